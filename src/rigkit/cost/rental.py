"""Renting the same capacity as a build, priced from the catalog's cloud instances (``cloud.yaml``).

For each kind of GPU in the build: per-GPU rental of the same card where an instance offers it
(the cheapest way to get that many cards), otherwise the nearest instance by GPU memory and memory
bandwidth (the two figures that decide which models fit and how fast they decode). The instance
the spec names (``compare_cloud``) is priced too and said to be like for like or not.

Every price carries its date; a price older than :data:`STALE_AFTER_DAYS` on the day of the
comparison says it is old.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from rigkit.build import Build
    from rigkit.catalog.parts import CloudInstance, Gpu

#: a cloud price older than this is reported as old (list prices change at least yearly: AWS cut
#: its P4/P5 on-demand prices by up to 45% in June 2025)
STALE_AFTER_DAYS = 365
#: rented capacity within these ratios of the build's GPU memory and bandwidth is like for like
LIKE_FOR_LIKE = (0.5, 2.0)

Basis = Literal["same card", "nearest", "named"]


def period_end(as_of: str) -> date:
    """The last day a price date can mean: '2024' -> 2024-12-31, '2025-06' -> 2025-06-30."""
    parts = [int(x) for x in as_of.split("-")]
    if len(parts) == 1:
        return date(parts[0], 12, 31)
    if len(parts) == 2:
        return date(parts[0], parts[1], calendar.monthrange(parts[0], parts[1])[1])
    return date(parts[0], parts[1], parts[2])


def price_age_days(as_of: str, today: date) -> int:
    """Days from the end of the price's stated period to ``today`` (0 when not yet past)."""
    return max(0, (today - period_end(as_of)).days)


@dataclass(frozen=True)
class RentedPiece:
    """``count`` instances of one cloud offer."""

    instance_id: str
    name: str
    provider: str
    gpu_id: str
    gpu_name: str
    gpus_per_instance: int
    count: int
    instance_usd_per_hour: float
    vram_gb_per_gpu: float
    bandwidth_gb_s_per_gpu: float
    price_as_of: str
    age_days: int
    source: str

    @property
    def gpus(self) -> int:
        return self.gpus_per_instance * self.count

    @property
    def usd_per_hour(self) -> float:
        return self.instance_usd_per_hour * self.count

    @property
    def stale(self) -> bool:
        return self.age_days > STALE_AFTER_DAYS

    def price_text(self) -> str:
        """'$0.69/h as of 2024 (old: 23 months)'."""
        out = f"${self.instance_usd_per_hour:g}/h as of {self.price_as_of}"
        if self.stale:
            out += f" (old: {self.age_days // 30} months)"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance_id,
            "name": self.name,
            "provider": self.provider,
            "gpu": self.gpu_id,
            "gpus_per_instance": self.gpus_per_instance,
            "count": self.count,
            "instance_usd_per_hour": self.instance_usd_per_hour,
            "usd_per_hour": round(self.usd_per_hour, 4),
            "price_as_of": self.price_as_of,
            "price_age_days": self.age_days,
            "stale": self.stale,
            "source": self.source,
        }


@dataclass(frozen=True)
class Rental:
    """A way to rent what the build has, with how close it comes."""

    basis: Basis
    pieces: tuple[RentedPiece, ...]
    build_vram_gb: float
    build_bandwidth_gb_s: float  # sum over the build's GPUs

    @property
    def usd_per_hour(self) -> float:
        return sum(p.usd_per_hour for p in self.pieces)

    @property
    def vram_gb(self) -> float:
        return sum(p.vram_gb_per_gpu * p.gpus for p in self.pieces)

    @property
    def bandwidth_gb_s(self) -> float:
        return sum(p.bandwidth_gb_s_per_gpu * p.gpus for p in self.pieces)

    @property
    def vram_ratio(self) -> float:
        return self.vram_gb / self.build_vram_gb if self.build_vram_gb else math.inf

    @property
    def bandwidth_ratio(self) -> float:
        return (
            self.bandwidth_gb_s / self.build_bandwidth_gb_s
            if self.build_bandwidth_gb_s
            else math.inf
        )

    @property
    def like_for_like(self) -> bool:
        lo, hi = LIKE_FOR_LIKE
        return self.basis == "same card" or (
            lo <= self.vram_ratio <= hi and lo <= self.bandwidth_ratio <= hi
        )

    @property
    def stale(self) -> bool:
        return any(p.stale for p in self.pieces)

    @property
    def label(self) -> str:
        """'4x RunPod 1x RTX 4090 (Secure Cloud)' or 'AWS EC2 p4d.24xlarge (8x A100 40GB)'."""
        return " + ".join((f"{p.count} x " if p.count > 1 else "") + p.name for p in self.pieces)

    @property
    def instance_ids(self) -> tuple[str, ...]:
        return tuple(p.instance_id for p in self.pieces)

    def why(self) -> str:
        """How this rental relates to the build, in words."""
        if self.basis == "same card":
            return "the same cards, rented per GPU"
        ratio = f"{self.vram_ratio:.1f}x the GPU memory, {self.bandwidth_ratio:.1f}x the bandwidth"
        if self.basis == "nearest":
            return f"no rental of the same card: nearest by memory and bandwidth ({ratio})"
        return "named in the spec: " + ratio + ("" if self.like_for_like else ", not like for like")

    def to_dict(self) -> dict[str, Any]:
        return {
            "basis": self.basis,
            "label": self.label,
            "why": self.why(),
            "like_for_like": self.like_for_like,
            "usd_per_hour": round(self.usd_per_hour, 4),
            "vram_gb": self.vram_gb,
            "bandwidth_gb_s": self.bandwidth_gb_s,
            "vram_ratio": round(self.vram_ratio, 3),
            "bandwidth_ratio": round(self.bandwidth_ratio, 3),
            "stale": self.stale,
            "pieces": [p.to_dict() for p in self.pieces],
        }


def _piece(inst: CloudInstance, gpu: Gpu, count: int, today: date) -> RentedPiece:
    return RentedPiece(
        instance_id=inst.id,
        name=inst.name,
        provider=inst.provider,
        gpu_id=inst.gpu_id,
        gpu_name=gpu.name,
        gpus_per_instance=inst.gpu_count,
        count=count,
        instance_usd_per_hour=inst.price_per_hour_usd,
        vram_gb_per_gpu=gpu.vram_gb,
        bandwidth_gb_s_per_gpu=gpu.bandwidth_gb_s,
        price_as_of=inst.price_as_of,
        age_days=price_age_days(inst.price_as_of, today),
        source=inst.source,
    )


def _groups(build: Build) -> list[tuple[Gpu, int]]:
    """The build's GPUs by model, in build order: [(gpu, count)]."""
    out: dict[str, tuple[Gpu, int]] = {}
    for g in build.gpus:
        gpu, n = out.get(g.gpu.id, (g.gpu, 0))
        out[g.gpu.id] = (gpu, n + 1)
    return list(out.values())


def _same_card(
    gpu: Gpu, n: int, instances: Sequence[CloudInstance], today: date
) -> RentedPiece | None:
    """The cheapest way to rent ``n`` of this card: whole instances of one offer."""
    best: RentedPiece | None = None
    for inst in instances:
        if inst.gpu_id != gpu.id:
            continue
        piece = _piece(inst, gpu, math.ceil(n / inst.gpu_count), today)
        if best is None or piece.usd_per_hour < best.usd_per_hour:
            best = piece
    return best


def _nearest(
    gpu: Gpu,
    n: int,
    instances: Sequence[CloudInstance],
    gpus: Mapping[str, Gpu],
    today: date,
) -> RentedPiece | None:
    """The instance (in whole copies, enough for the memory) closest to ``n`` x ``gpu`` in GPU
    memory and bandwidth: the smallest |ln(memory ratio)| + |ln(bandwidth ratio)|, then the
    cheapest."""
    want_vram = gpu.vram_gb * n
    want_bw = gpu.bandwidth_gb_s * n
    scored: list[tuple[float, float, RentedPiece]] = []
    for inst in instances:
        cg = gpus.get(inst.gpu_id)
        if cg is None:
            continue
        count = max(1, math.ceil(want_vram / (cg.vram_gb * inst.gpu_count) - 1e-9))
        piece = _piece(inst, cg, count, today)
        vram = cg.vram_gb * piece.gpus
        bw = cg.bandwidth_gb_s * piece.gpus
        dist = abs(math.log(vram / want_vram)) + abs(math.log(bw / want_bw))
        scored.append((round(dist, 6), piece.usd_per_hour, piece))
    if not scored:
        return None
    return min(scored, key=lambda s: (s[0], s[1]))[2]


def like_for_like(
    build: Build,
    instances: Sequence[CloudInstance],
    gpus: Mapping[str, Gpu],
    today: date,
) -> Rental | None:
    """Renting what the build has: the same cards per GPU where offered, else the nearest
    instance, per kind of GPU. None when the catalog has no instance at all."""
    pieces: list[RentedPiece] = []
    same = True
    for gpu, n in _groups(build):
        piece = _same_card(gpu, n, instances, today)
        if piece is None:
            same = False
            piece = _nearest(gpu, n, instances, gpus, today)
        if piece is None:
            return None
        pieces.append(piece)
    return Rental(
        basis="same card" if same else "nearest",
        pieces=tuple(pieces),
        build_vram_gb=sum(g.gpu.vram_gb for g in build.gpus),
        build_bandwidth_gb_s=sum(g.gpu.bandwidth_gb_s for g in build.gpus),
    )


def named(build: Build, inst: CloudInstance, gpus: Mapping[str, Gpu], today: date) -> Rental | None:
    """One instance of the cloud offer the spec names (None if its GPU is unknown)."""
    cg = gpus.get(inst.gpu_id)
    if cg is None:
        return None
    return Rental(
        basis="named",
        pieces=(_piece(inst, cg, 1, today),),
        build_vram_gb=sum(g.gpu.vram_gb for g in build.gpus),
        build_bandwidth_gb_s=sum(g.gpu.bandwidth_gb_s for g in build.gpus),
    )
