"""The inference estimator: which models a build runs, and how fast.

``estimate(model, quant, gpu, ...)`` returns an :class:`Estimate` with memory per GPU, whether it
fits (or offloads to the CPU), prefill and decode speed, time to first token, the largest context,
the most concurrent sequences, load time, the bounding resource and a term-by-term breakdown.
The physics is in :mod:`rigkit.estimate.speed`; the efficiency parameters are data
(``data/efficiency.yaml``), fitted by ``scripts/fit_estimator.py``.
"""

from __future__ import annotations

from rigkit.estimate.core import estimate
from rigkit.estimate.params import Params, load_params
from rigkit.estimate.result import Estimate

__all__ = ["Estimate", "Params", "estimate", "load_params"]
