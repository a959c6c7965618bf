"""Many configurations of one architecture (learning rates, seeds) trained as one compiled program:
the members' states stacked along a "sweep" axis (`members`), each learning rate data in its
optimizer state, so new values reuse the program (`programs`); split over a device mesh
(`placement`); `loop.fit_sweep` is the one epoch loop, a single run a sweep of one (`fit`)."""

from ..spec import members_of  # noqa: F401
from .loop import Loop, SweepResult, fit, fit_sweep, sweep  # noqa: F401
from .members import init_sweep, stack, unstack  # noqa: F401
from .placement import devices_used  # noqa: F401
from .programs import sweep_epoch, sweep_evaluate  # noqa: F401
