"""Samplers by their A1111 names, and the diffusers scheduler each one is."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from collections.abc import Mapping
from typing import Any, Final

import attrs

from animagine.errors import GenerationArgumentError, GenerationTypeError, MissingDependencyError
from animagine.extras import require

__all__ = ["SAMPLERS", "Sampler", "make_scheduler", "resolve_sampler"]


@attrs.frozen
class Sampler:
    """One A1111 sampler: the diffusers scheduler class, its options, and what it needs.

    Attributes:
        name: The A1111 name (``"DPM++ 2M Karras"``).
        scheduler: The diffusers scheduler class name.
        options: Scheduler options that make it this sampler.
        karras: Karras sigmas.
        requires: A package the scheduler needs beyond the ``generate`` extra, if any.
    """

    name: str
    scheduler: str
    options: Mapping[str, Any] = attrs.field(factory=dict)
    karras: bool = False
    requires: str | None = None


#: A1111 sampler names and the diffusers scheduler each one maps to (diffusers' own table, in
#: its "Schedulers" documentation). Names are matched ignoring case.
_SAMPLER_TABLE: Final = (
    Sampler("Euler a", "EulerAncestralDiscreteScheduler"),
    Sampler("Euler", "EulerDiscreteScheduler"),
    Sampler("Heun", "HeunDiscreteScheduler"),
    Sampler("LMS", "LMSDiscreteScheduler", requires="scipy"),
    Sampler("DPM2", "KDPM2DiscreteScheduler"),
    Sampler("DPM2 Karras", "KDPM2DiscreteScheduler", karras=True),
    Sampler("DPM2 a", "KDPM2AncestralDiscreteScheduler"),
    Sampler("DPM2 a Karras", "KDPM2AncestralDiscreteScheduler", karras=True),
    Sampler("DPM++ 2M", "DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    Sampler(
        "DPM++ 2M Karras",
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "dpmsolver++"},
        karras=True,
    ),
    Sampler("DPM++ 2M SDE", "DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    Sampler(
        "DPM++ 2M SDE Karras",
        "DPMSolverMultistepScheduler",
        {"algorithm_type": "sde-dpmsolver++"},
        karras=True,
    ),
    Sampler("DPM++ SDE", "DPMSolverSDEScheduler", requires="torchsde"),
    Sampler("DPM++ SDE Karras", "DPMSolverSDEScheduler", karras=True, requires="torchsde"),
    Sampler("DDIM", "DDIMScheduler"),
    Sampler("UniPC", "UniPCMultistepScheduler"),
)  # fmt: skip
_SAMPLERS_BY_KEY: Final = {sampler.name.lower(): sampler for sampler in _SAMPLER_TABLE}
#: The A1111 sampler names :meth:`Generator.__call__` accepts (``LMS`` needs scipy, ``DPM++ SDE``
#: and ``DPM++ SDE Karras`` need torchsde).
SAMPLERS: Final = tuple(sampler.name for sampler in _SAMPLER_TABLE)
_SIGMA_SCHEDULES: Final = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas")


def resolve_sampler(name: object) -> Sampler:
    """The sampler called ``name`` (any case, any spacing), its extra dependency checked.

    Raises:
        GenerationTypeError: ``name`` is not a str.
        GenerationArgumentError: no such sampler.
        MissingDependencyError: the sampler needs a package that is not installed.
    """
    if not isinstance(name, str):
        raise GenerationTypeError(f"sampler must be a str, got {type(name).__name__}: {name!r}")
    sampler = _SAMPLERS_BY_KEY.get(" ".join(name.split()).lower())
    if sampler is None:
        raise GenerationArgumentError(
            f"unknown sampler {name!r}; known samplers are {', '.join(map(repr, SAMPLERS))}"
        )
    if sampler.requires is not None and not _installed(sampler.requires):
        raise MissingDependencyError(
            f"sampler {sampler.name!r} needs {sampler.requires}: pip install {sampler.requires}"
            " (or pip install 'animagine[generate]')"
        )
    return sampler


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    if module in sys.modules:
        return sys.modules[module] is not None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def make_scheduler(sampler: Sampler, base_config: Mapping[str, Any]) -> Any:
    """A new scheduler for ``sampler`` from the model's scheduler config (betas, spacing...)."""
    diffusers = require("diffusers")
    cls = getattr(diffusers, sampler.scheduler)
    accepted = inspect.signature(cls.__init__).parameters
    options = dict(sampler.options)
    # Explicit sigma schedule: a model shipped with a Karras scheduler must not turn "Euler"
    # into "Euler Karras" through its config.
    for schedule in _SIGMA_SCHEDULES:
        if schedule in accepted:
            options[schedule] = sampler.karras and schedule == "use_karras_sigmas"
    return cls.from_config(dict(base_config), **options)
