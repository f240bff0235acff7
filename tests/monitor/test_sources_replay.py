"""The replay source: packaged files, pacing, bad lines, looping."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigkit.errors import MonitorError
from rigkit.monitor.sources import open_source
from rigkit.monitor.sources.base import Source, SourceExhausted
from rigkit.monitor.sources.replay import ReplaySource, packaged_replays, resolve_replay


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "r.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_packaged_replays_resolve_by_name() -> None:
    assert {"idle-4x4090", "loaded-4x4090"} <= set(packaged_replays())
    assert resolve_replay("idle-4x4090").name == "idle-4x4090.jsonl"


def test_packaged_files_are_labelled_synthetic_and_plausible() -> None:
    for name in ("idle-4x4090", "loaded-4x4090"):
        path = resolve_replay(name)
        assert path.read_text().startswith("# SYNTHETIC")
        src = ReplaySource(path, speed=0)
        samples = []
        while True:
            try:
                samples.append(src.read())
            except SourceExhausted:
                break
        assert len(samples) == 240  # 4 minutes at 1 Hz
        assert samples[-1].t - samples[0].t == 239.0
        assert all(len(s.gpus) == 4 for s in samples)
        gens = {g.pcie_gen for s in samples for g in s.gpus}
        powers = [g.power_w for s in samples for g in s.gpus if g.power_w is not None]
        if name.startswith("idle"):
            assert gens == {1}  # the link trains down to gen 1 at idle
            assert min(powers) >= 20 and max(powers) <= 30  # P8 idle, 20-30 W
        else:
            assert gens == {4}
            assert max(powers) <= 450  # never above the 450 W board power limit
            last = [g.temperature_c for g in samples[-1].gpus]
            assert all(t is not None and 65 <= t <= 75 for t in last)


def test_unknown_replay_name_lists_the_packaged_ones() -> None:
    with pytest.raises(MonitorError) as err:
        resolve_replay("no-such-replay")
    assert "idle-4x4090" in str(err.value)


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, ['{"t": 0, "gpus": []}', "# a comment", "", "{not json"])
    src = ReplaySource(p, speed=0)
    assert src.read().t == 0.0
    with pytest.raises(MonitorError) as err:
        src.read()
    assert f"{p}:4" in str(err.value)  # line 4: after the sample, the comment and the blank line


def test_bad_field_names_file_line_and_field(tmp_path: Path) -> None:
    p = _write(tmp_path, ['{"t": 0, "gpus": [{"index": 0, "fan_pct": "high"}]}'])
    with pytest.raises(MonitorError) as err:
        ReplaySource(p, speed=0).read()
    assert f"{p}:1: gpus[0].fan_pct" in str(err.value)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_speed_scales_the_gaps_between_samples(tmp_path: Path) -> None:
    p = _write(tmp_path, [f'{{"t": {t}}}' for t in (0, 1, 2, 4)])
    fc = FakeClock()
    src = ReplaySource(p, speed=2.0, clock=fc.clock, sleep=fc.sleep)
    ts = [src.read().t for _ in range(4)]
    assert ts == [0.0, 1.0, 2.0, 4.0]
    # at 2x, gaps of 1, 1 and 2 s of file time take 0.5, 0.5 and 1.0 s
    assert fc.sleeps == pytest.approx([0.5, 0.5, 1.0])


def test_speed_zero_never_sleeps(tmp_path: Path) -> None:
    p = _write(tmp_path, [f'{{"t": {t}}}' for t in range(5)])
    fc = FakeClock()
    src = ReplaySource(p, speed=0, clock=fc.clock, sleep=fc.sleep)
    for _ in range(5):
        src.read()
    assert fc.sleeps == []
    with pytest.raises(SourceExhausted):
        src.read()


def test_loop_keeps_time_increasing(tmp_path: Path) -> None:
    p = _write(tmp_path, ['{"t": 10}', '{"t": 11}'])
    src = ReplaySource(p, speed=0, loop=True)
    # second pass starts 1 s after the last sample: 11 + 1 = 12, then 13
    assert [src.read().t for _ in range(4)] == [10.0, 11.0, 12.0, 13.0]


def test_open_source_forms() -> None:
    src = open_source("replay:idle-4x4090", speed=0)
    assert isinstance(src, Source)
    assert src.read().source == "replay:idle-4x4090.jsonl"
    with pytest.raises(MonitorError):
        open_source("replay:")
    with pytest.raises(MonitorError):
        open_source("prometheus")
    with pytest.raises(MonitorError):
        ReplaySource("idle-4x4090", speed=-1)


def test_age_s_makes_a_replayed_sample_old(tmp_path: Path) -> None:
    import time

    f = tmp_path / "a.jsonl"
    f.write_text('{"t": 0, "gpus": []}\n{"t": 1, "age_s": 60, "gpus": []}\n', encoding="utf-8")
    src = ReplaySource(f, speed=0)
    first, second = src.read(), src.read()
    now = time.time()
    assert now - first.wall_time < 5  # collected just now
    assert 60 <= now - second.wall_time < 65  # a reading 60 s old when collected


def test_bad_age_s_names_the_line(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    f.write_text('{"t": 0, "gpus": []}\n{"t": 1, "age_s": -3, "gpus": []}\n', encoding="utf-8")
    src = ReplaySource(f, speed=0)
    src.read()
    with pytest.raises(MonitorError, match=r"a.jsonl:2: age_s must be a number"):
        src.read()
