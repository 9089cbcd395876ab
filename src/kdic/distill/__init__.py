"""SMoDi distillation engine: teacher-guided construction, strategies as data, hybrid phases, and the
one run pipeline that ``kdic train`` and ``kdic distill`` share."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the real names for type checkers; at run time each loads on first use
    from .construct import derive_student, init_from_teacher, student_for
    from .hybrid import DistillationModule
    from .pipeline import RunSpec, build_distillation, run
    from .strategy import PhaseSpec, Strategy, load_strategy


_EXPORTS = {
    "derive_student": ".construct",
    "init_from_teacher": ".construct",
    "student_for": ".construct",
    "DistillationModule": ".hybrid",
    "RunSpec": ".pipeline",
    "build_distillation": ".pipeline",
    "run": ".pipeline",
    "PhaseSpec": ".strategy",
    "Strategy": ".strategy",
    "load_strategy": ".strategy",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = list(_EXPORTS)
