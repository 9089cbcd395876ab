"""Distillation strategies are data: phases saying which student parts train, inside which host,
under which loss, for which share of the step budget (``configs/strategies/*.json``).

Parts: ``stage1``..``stage6`` (transform stages), ``channel_context``, ``param_aggregation``,
``spatial_context``, ``hyper`` (h_a, h_s and the factorized prior), ``all``.
Hosts: ``student`` (the student alone) or ``teacher`` (the frozen teacher with the listed student
parts swapped in, 1x1 adapters where widths differ).
Losses: ``rd`` (end-to-end rate-distortion, implicit supervision), ``rd+feature`` (plus MSE
between student and teacher stage outputs), ``feature`` (each trained part mimics the teacher
part's output from the teacher part's input: explicit supervision).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError
from ..fileio import read_json

STAGE_PARTS = tuple(f"stage{k}" for k in range(1, 7))
ENTROPY_PARTS = ("channel_context", "param_aggregation", "spatial_context", "hyper")
PARTS = STAGE_PARTS + ENTROPY_PARTS + ("all",)
HOSTS = ("student", "teacher")
LOSSES = ("rd", "rd+feature", "feature")
STRATEGY_DIR = Path(__file__).resolve().parents[1] / "configs" / "strategies"
STRATEGY_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")  # bundled names only: no dots, no path separators


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    fraction: float
    train: tuple[str, ...]
    host: str = "student"
    swap: tuple[str, ...] = ()
    loss: str = "rd"
    feature_weight: float = 1.0
    feature_parts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"phase {self.name!r}"
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"{where}: fraction must be in (0, 1], got {self.fraction}")
        for part in (*self.train, *self.swap, *self.feature_parts):
            if part not in PARTS:
                raise ConfigError(f"{where}: unknown part {part!r}; known: {', '.join(PARTS)}")
        if not self.train:
            raise ConfigError(f"{where}: 'train' names no part")
        if self.host not in HOSTS:
            raise ConfigError(f"{where}: host must be one of {HOSTS}, got {self.host!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"{where}: loss must be one of {LOSSES}, got {self.loss!r}")
        if self.host == "teacher":
            missing = set(self.train) - set(self.swap)
            if missing or "all" in self.swap:
                raise ConfigError(f"{where}: inside the teacher, trained parts {sorted(missing) or ['all']} must be "
                                  "swapped-in student parts (and 'all' cannot be swapped)")
        if self.loss == "rd+feature" and not self.feature_parts:
            raise ConfigError(f"{where}: loss 'rd+feature' needs 'feature_parts'")
        if self.loss == "feature" and "all" in self.train:
            raise ConfigError(f"{where}: explicit feature loss needs named parts, not 'all'")


@dataclass(frozen=True)
class Strategy:
    name: str
    phases: tuple[PhaseSpec, ...]
    description: str = ""
    uses_teacher: bool = True
    inherit: tuple[str, ...] = field(default_factory=tuple)
    teacher_init: bool = False  # the student always starts from the teacher's weights (pruning)

    def __post_init__(self) -> None:
        total = sum(p.fraction for p in self.phases)
        if not self.phases or abs(total - 1) > 1e-6:
            raise ConfigError(f"strategy {self.name!r}: phase fractions must sum to 1, got {total:.6f}")
        for part in self.inherit:
            if part not in ENTROPY_PARTS:
                raise ConfigError(f"strategy {self.name!r}: only entropy parts can be inherited, got {part!r}")
        if self.teacher_init and not self.uses_teacher:
            raise ConfigError(f"strategy {self.name!r}: teacher_init needs uses_teacher")
        if not self.uses_teacher and any(p.host == "teacher" or p.loss != "rd" for p in self.phases):
            raise ConfigError(f"strategy {self.name!r}: without a teacher, phases must be student-hosted with RD loss")

    def with_final_fraction(self, fraction: float) -> "Strategy":
        """The same strategy with the last phase (the end-to-end fine-tune) taking ``fraction`` of the
        budget and the earlier phases sharing the rest in their original proportions."""
        if len(self.phases) < 2 or not 0 < fraction < 1:
            raise ConfigError(f"strategy {self.name!r}: the final fraction needs 2+ phases and a value in (0, 1)")
        earlier = sum(p.fraction for p in self.phases[:-1])
        phases = [replace(p, fraction=p.fraction * (1 - fraction) / earlier) for p in self.phases[:-1]]
        return replace(self, phases=(*phases, replace(self.phases[-1], fraction=fraction)))

    def steps(self, total_steps: int) -> list[int]:
        """Steps per phase summing exactly to ``total_steps`` (the last phase takes the rounding)."""
        counts = [max(1, round(p.fraction * total_steps)) for p in self.phases[:-1]]
        last = total_steps - sum(counts)
        if last < 1:
            raise ConfigError(f"{total_steps} steps are too few for the {len(self.phases)} phases of {self.name!r}")
        return counts + [last]


def _tuple(value, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of part names")
    return tuple(value)


def strategy_from_dict(data: dict) -> Strategy:
    known = {"name", "description", "phases", "uses_teacher", "inherit", "teacher_init"}
    if not isinstance(data, dict) or set(data) - known:
        raise ConfigError(f"strategy: unknown field(s) {sorted(set(data) - known) if isinstance(data, dict) else data}")
    phase_fields = set(PhaseSpec.__dataclass_fields__)
    phases = []
    for i, p in enumerate(data.get("phases", [])):
        if not isinstance(p, dict) or set(p) - phase_fields:
            raise ConfigError(f"strategy phase {i}: unknown field(s) {sorted(set(p) - phase_fields)}")
        try:
            phases.append(PhaseSpec(**{**p, **{k: _tuple(p[k], f"phase {i}.{k}") for k in ("train", "swap", "feature_parts") if k in p}}))
        except TypeError as exc:
            raise ConfigError(f"strategy phase {i}: {exc}") from None
    return Strategy(str(data.get("name", "")), tuple(phases), str(data.get("description", "")),
                    bool(data.get("uses_teacher", True)), _tuple(data.get("inherit", []), "inherit"),
                    bool(data.get("teacher_init", False)))


def available_strategies() -> list[str]:
    return sorted(p.stem for p in STRATEGY_DIR.glob("*.json"))


def load_strategy(name_or_path: str) -> Strategy:
    """A bundled strategy by name (``configs/strategies/NAME.json``) or a JSON file.

    A bare name is checked against a strict charset and the registry, so it cannot reach files
    outside the strategies folder (``../../x``).
    """
    if Path(name_or_path).suffix == ".json":
        path = Path(name_or_path)
    elif STRATEGY_NAME.fullmatch(name_or_path) and name_or_path in available_strategies():
        path = STRATEGY_DIR / f"{name_or_path}.json"
    else:
        raise ConfigError(f"unknown strategy {name_or_path!r}; known: {', '.join(available_strategies())} "
                          "(or pass a path ending in .json)")
    return strategy_from_dict(read_json(path, "strategy file", ConfigError))
