"""From a checked plan to a serving machine: an Ansible project for the build, the inference
server configured by the estimate, and an audit of a live host against its spec.

:func:`plan_build` works out every value (with its reason) for one spec; :func:`render_project`
writes the Ansible project from packaged templates; :mod:`rigkit.provision.audit` compares a
host with its spec.
"""

from __future__ import annotations

from rigkit.provision.generate import ProvisionResult, render_project
from rigkit.provision.plan import BuildPlan, ProvisionError, ProvisionOptions, Var, plan_build
from rigkit.provision.serving import ServeRequest, ServingPlan, plan_serving

__all__ = [
    "BuildPlan",
    "ProvisionError",
    "ProvisionOptions",
    "ProvisionResult",
    "ServeRequest",
    "ServingPlan",
    "Var",
    "plan_build",
    "plan_serving",
    "render_project",
]
