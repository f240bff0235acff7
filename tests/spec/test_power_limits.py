"""A spec's power_limit_w against the card's range, and peak power where a card's spikes are not
measured. Before: an RTX 5090 build accepted power_limit_w 800 and 100 (docs/spec.md says an
out-of-range limit is an error) and showed its peak power equal to its sustained power without
saying why (only under --verbose)."""

from __future__ import annotations

import pytest

from rigkit.build import Build
from rigkit.design.plan import plan
from rigkit.errors import SpecError
from rigkit.report.tables import glance_rows
from rigkit.spec import parse_spec, resolve

SPEC = """\
name: d
parts:
  cpu: ryzen-9-9950x
  motherboard: asus-proart-x670e-creator
  memory: {{id: ddr5-5600-udimm-48gb, quantity: 2}}
  gpus: [{{id: {gpu}, quantity: 1{limit}}}]
  psus: [corsair-rm1000x-shift]
"""


def _build(gpu: str, limit: float | None = None) -> Build:
    extra = f", power_limit_w: {limit:g}" if limit is not None else ""
    return resolve(parse_spec(SPEC.format(gpu=gpu, limit=extra), file="s.yaml"))


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (800, "800 W is above the highest limit the NVIDIA GeForce RTX 5090 accepts (600 W)"),
        (100, "100 W is below the lowest limit the NVIDIA GeForce RTX 5090 accepts (400 W)"),
    ],
)
def test_rtx_5090_limits_outside_its_range_are_errors(limit: float, text: str) -> None:
    with pytest.raises(SpecError) as info:
        _build("rtx-5090", limit)
    assert str(info.value) == (
        f"s.yaml:6: parts.gpus[0].power_limit_w: {text} "
        "(hint: nvidia-smi -pl takes 400 to 600 W on this card)"
    )


def test_rtx_5090_peak_counts_its_transients() -> None:
    # 575 W x 1.5 (the catalog's transient_peak_ratio) = 862.5 W of GPU peak against 575 W
    # sustained: the peak is 287.5 W above the sustained load
    result = plan(_build("rtx-5090"), capacity=False)
    s = result.summary
    assert s.peak_power_w - s.sustained_power_w == pytest.approx(287.5)
    assert dict(glance_rows(result))["Peak with GPU transients"] == f"{s.peak_power_w:,.0f} W"


def test_a_card_without_a_measured_ratio_says_so() -> None:
    result = plan(_build("rtx-4080", 250), capacity=False)
    peak = dict(glance_rows(result))["Peak with GPU transients"]
    assert peak.endswith(
        "(at least: no measured transient ratio for NVIDIA GeForce RTX 4080, "
        "counted at its sustained power)"
    )
    (f,) = [f for f in result.findings if f.rule == "PWR004"]
    assert "power limit 250 W could not be checked" in f.message
