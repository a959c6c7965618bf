"""Many configurations of one architecture (learning rates, seeds) trained as one compiled program.

The K members' parameters and optimizer states are stacked along a leading "sweep" axis
(`members`); the learning rate is part of each member's optimizer state (`optax.inject_hyperparams`),
so it is data: a sweep over new values reuses the compiled program (`programs`). With several
devices, the members are split over a mesh (`placement`). `loop.fit_sweep` is the one epoch loop;
a single run is a sweep of one member (`fit`). `Settings(strategy="auto")` picks vmap or map per
backend (`settings.auto_strategy`).
"""

from ..spec import members_of
from .loop import Loop, SweepResult, fit, fit_sweep, sweep
from .members import init_sweep, stack, sweep_size, unstack
from .placement import Placement, devices_used, placement
from .programs import AXIS, sweep_epoch, sweep_evaluate

__all__ = ["AXIS", "Loop", "Placement", "SweepResult", "devices_used", "fit", "fit_sweep", "init_sweep"]
__all__ += [
    "members_of",
    "placement",
    "stack",
    "sweep",
    "sweep_epoch",
    "sweep_evaluate",
    "sweep_size",
    "unstack",
]
