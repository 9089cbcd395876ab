"""SMoDi distillation engine: teacher-guided construction, strategies as data, hybrid phases, and the
one run pipeline that ``kdic train`` and ``kdic distill`` share."""

from ..lazy import lazy_exports

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
