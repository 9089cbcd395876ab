"""SMoDi distillation engine: teacher-guided construction, strategies as data, hybrid phases."""

from .construct import derive_student, init_from_teacher
from .hybrid import DistillationModule
from .run import build_distillation, distill
from .strategy import PhaseSpec, Strategy, available_strategies, load_strategy

__all__ = ["DistillationModule", "PhaseSpec", "Strategy", "available_strategies", "build_distillation",
           "derive_student", "distill", "init_from_teacher", "load_strategy"]
