"""`plan(build) -> PlanResult`: the build at a glance, every rule's findings, and the capacity
section (which models the build runs, and how fast).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rigkit.catalog import load_catalog
from rigkit.catalog.loader import Catalog
from rigkit.design.claims import ClaimCheck, check_claims
from rigkit.design.model import (
    BTU_H_PER_W,
    MemoryConfig,
    PcieLink,
    PowerBudget,
    Volume,
    break_even_hours,
    electricity_usd_per_hour,
    electricity_usd_per_month,
    memory_config,
    pcie_links,
    power_budget,
    volumes,
)
from rigkit.design.registry import Finding, Severity, run_rules
from rigkit.estimate.capacity import Capacity, plan_capacity

if TYPE_CHECKING:
    from datetime import date

    from rigkit.build import Build, CostLine
    from rigkit.cost import CostComparison

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Summary:
    """The build's headline numbers, each with the terms it was added up from."""

    gpu_count: int
    gpu_names: tuple[str, ...]
    total_vram_gb: float
    fp16_tflops: float  # dense FP16 tensor, FP32 accumulate, all GPUs
    bf16_tflops: float
    gpu_bandwidth_gb_s: float  # sum of GPU memory bandwidths
    system_memory_gb: int
    memory: MemoryConfig
    pcie: tuple[PcieLink, ...]
    power: PowerBudget
    volumes: tuple[Volume, ...]
    costs: tuple[CostLine, ...]
    electricity_usd_month: float
    break_even_h: float | None  # against build.cloud

    @property
    def sustained_power_w(self) -> float:
        return self.power.sustained_w

    @property
    def peak_power_w(self) -> float:
        return self.power.peak_w

    @property
    def wall_power_w(self) -> float:
        return self.power.wall_w

    @property
    def heat_btu_h(self) -> float:
        return self.power.wall_w * BTU_H_PER_W

    @property
    def psu_capacity_w(self) -> float:
        return self.power.psu_capacity_w

    @property
    def total_cost_usd(self) -> float:
        return sum(c.total_usd for c in self.costs)

    @property
    def storage_read_gb_s(self) -> float:
        """The fastest volume's sequential read."""
        return max((v.read_gb_s for v in self.volumes), default=0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gpu_count": self.gpu_count,
            "gpus": list(self.gpu_names),
            "total_vram_gb": self.total_vram_gb,
            "fp16_tflops": round(self.fp16_tflops, 1),
            "bf16_tflops": round(self.bf16_tflops, 1),
            "gpu_bandwidth_gb_s": round(self.gpu_bandwidth_gb_s, 1),
            "system_memory_gb": self.system_memory_gb,
            "memory_bandwidth_gb_s": round(self.memory.bandwidth_gb_s, 1),
            "memory_effective_gb_s": round(self.memory.effective_gb_s, 1),
            "memory": self.memory.to_dict(),
            "pcie": [p.to_dict() for p in self.pcie],
            "sustained_power_w": round(self.sustained_power_w, 1),
            "peak_power_w": round(self.peak_power_w, 1),
            "wall_power_w": round(self.wall_power_w, 1),
            "heat_btu_h": round(self.heat_btu_h),
            "psu_capacity_w": self.psu_capacity_w,
            "power": self.power.to_dict(),
            "storage_read_gb_s": round(self.storage_read_gb_s, 2),
            "volumes": [v.to_dict() for v in self.volumes],
            "total_cost_usd": round(self.total_cost_usd, 2),
            "costs": [c.to_dict() for c in self.costs],
            "electricity_usd_month": round(self.electricity_usd_month, 2),
            "break_even_h": None if self.break_even_h is None else round(self.break_even_h, 1),
        }


def summarize(build: Build) -> Summary:
    power = power_budget(build)
    costs = tuple(build.cost_lines())
    total = sum(c.total_usd for c in costs)
    be = None
    if build.cloud is not None:
        be = break_even_hours(
            total, build.cloud.price_per_hour_usd, electricity_usd_per_hour(build, power.wall_w)
        )
    return Summary(
        gpu_count=build.gpu_count,
        gpu_names=tuple(g.gpu.name for g in build.gpus),
        total_vram_gb=sum(g.gpu.vram_gb for g in build.gpus),
        fp16_tflops=sum(g.gpu.fp16_tflops for g in build.gpus),
        bf16_tflops=sum(g.gpu.bf16_tflops for g in build.gpus),
        gpu_bandwidth_gb_s=sum(g.gpu.bandwidth_gb_s for g in build.gpus),
        system_memory_gb=build.memory_gb,
        memory=memory_config(build),
        pcie=tuple(pcie_links(build)),
        power=power,
        volumes=tuple(volumes(build)),
        costs=costs,
        electricity_usd_month=electricity_usd_per_month(build, power.wall_w),
        break_even_h=be,
    )


@dataclass(frozen=True)
class PlanResult:
    build: Build
    summary: Summary
    findings: tuple[Finding, ...]
    capacity: Capacity | None = field(default=None)  # None: plan(build, capacity=False)
    claims: tuple[ClaimCheck, ...] = ()  # the spec's `claims:`, checked
    cost: CostComparison | None = None  # owning against renting (rigkit.cost)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.WARNING]

    @property
    def ok(self) -> bool:
        return not self.errors

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for f in self.findings if f.severity is s) for s in Severity}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "build": self.build.name,
            "spec": self.build.spec_path,
            "ok": self.ok,
            "counts": self.counts(),
            "summary": self.summary.to_dict(),
            "findings": [f.to_dict() for f in self.findings],
        }
        if self.capacity is not None:
            out["capacity"] = self.capacity.to_dict()
        if self.claims:
            out["claims"] = [c.to_dict() for c in self.claims]
        if self.cost is not None:
            out["cost"] = self.cost.to_dict()
        return out


def plan(
    build: Build,
    *,
    capacity: bool = True,
    catalog: Catalog | None = None,
    horizon_years: float | None = None,
    today: date | None = None,
) -> PlanResult:
    """Run every rule on ``build``, add up its summary numbers and check the spec's claims.

    ``catalog``: what the rules compare the build with (cloud instances, UPS units); default
    the packaged catalog the spec was resolved against. ``horizon_years`` (default 3) and
    ``today`` (default the current date, for the cloud prices' ages) shape the comparison of
    owning with renting (:func:`rigkit.cost.compare_costs`).
    """
    from rigkit.cost import DEFAULT_HORIZON_YEARS, compare_costs

    summary = summarize(build)
    cat = load_catalog() if catalog is None else catalog
    return PlanResult(
        build=build,
        summary=summary,
        findings=tuple(run_rules(build, cat)),
        capacity=plan_capacity(build) if capacity else None,
        claims=check_claims(build, summary),
        cost=compare_costs(
            build,
            cat,
            horizon_years=DEFAULT_HORIZON_YEARS if horizon_years is None else horizon_years,
            today=today,
        ),
    )
