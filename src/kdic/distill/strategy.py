"""Distillation strategies are data: phases saying which student parts train, inside which host,
under which loss, for which share of the step budget (``configs/strategies/*.json``).

Parts: ``stageK`` (SMoDi stage K: encoder stages first, then decoder stages), ``encoder``,
``decoder`` and ``stages`` (all of those), the entropy parts the teacher's latent-codec family
declares (e.g. ``channel_context``, ``param_aggregation``, ``spatial_context``, ``hyper``), ``all``.
A phase with ``each`` stands for one phase per item, expanded for the teacher at hand
(``expand``): ``"stage"`` (every transform stage in turn) and ``"entropy-part"`` (the family's
entropy phases in its declared order); its ``fraction`` is shared equally among them.
Hosts: ``student`` (the student alone) or ``teacher`` (the frozen teacher with the listed student
parts swapped in, 1x1 adapters where widths differ).
Losses: ``rd`` (end-to-end rate-distortion, implicit supervision), ``rd+feature`` (plus MSE
between student and teacher stage outputs), ``feature`` (each trained part mimics the teacher
part's output from the teacher part's input: explicit supervision).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from ..configs import config_path
from ..errors import ConfigError
from ..fileio import read_json
from ..train.losses import PHASE_LOSSES

STAGE_PART = re.compile(r"stage([1-9][0-9]?)")
STAGE_GROUPS = ("encoder", "decoder", "stages")
PART_NAME = re.compile(r"[a-z][a-z_]{0,39}|stage[1-9][0-9]?")  # entropy part names are the family's
EACH = ("stage", "entropy-part")
HOSTS = ("student", "teacher")


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    fraction: float
    train: tuple[str, ...] = ()
    host: str = "student"
    swap: tuple[str, ...] = ()
    loss: str = "rd"
    feature_weight: float = 1.0
    feature_parts: tuple[str, ...] = ()
    each: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = f"phase {self.name!r}"
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"{where}: fraction must be in (0, 1], got {self.fraction}")
        for part in (*self.train, *self.swap, *self.feature_parts):
            if PART_NAME.fullmatch(part) is None:
                raise ConfigError(f"{where}: {part[:40]!r} is not a part name")
        for item in self.each:
            if item not in EACH:
                raise ConfigError(f"{where}: 'each' takes {EACH}, got {item[:40]!r}")
        if self.each and (self.train or self.swap):
            raise ConfigError(f"{where}: a phase with 'each' trains (and swaps) each item itself; drop 'train'/'swap'")
        if self.each:
            return
        if not self.train:
            raise ConfigError(f"{where}: 'train' names no part")
        if self.host not in HOSTS:
            raise ConfigError(f"{where}: host must be one of {HOSTS}, got {self.host!r}")
        if self.loss not in PHASE_LOSSES:
            raise ConfigError(f"{where}: loss must be one of {tuple(PHASE_LOSSES)}, got {self.loss[:40]!r}")
        if self.host == "teacher":
            missing = set(self.train) - set(self.swap)
            if missing or "all" in self.swap:
                raise ConfigError(
                    f"{where}: inside the teacher, trained parts {sorted(missing) or ['all']} must be "
                    "swapped-in student parts (and 'all' cannot be swapped)"
                )
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
            if PART_NAME.fullmatch(part) is None or STAGE_PART.fullmatch(part) or part in (*STAGE_GROUPS, "all"):
                raise ConfigError(f"strategy {self.name!r}: only entropy parts can be inherited, got {part[:40]!r}")
        if self.teacher_init and not self.uses_teacher:
            raise ConfigError(f"strategy {self.name!r}: teacher_init needs uses_teacher")
        if not self.uses_teacher and any(p.host == "teacher" or p.loss != "rd" for p in self.phases):
            raise ConfigError(f"strategy {self.name!r}: without a teacher, phases must be student-hosted with RD loss")

    def with_final_fraction(self, fraction: float) -> Strategy:
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

    def expand(self, encoder_stages: int, decoder_stages: int, family) -> Strategy:
        """The concrete phases for a teacher with these stage counts and latent-codec ``family``:
        ``each`` phases unrolled, stage groups spelled out, every part checked against the model."""
        count = encoder_stages + decoder_stages
        groups = {
            "encoder": range(1, encoder_stages + 1),
            "decoder": range(encoder_stages + 1, count + 1),
            "stages": range(1, count + 1),
        }

        def parts(names: tuple[str, ...], where: str) -> tuple[str, ...]:
            out: list[str] = []
            for name in names:
                match = STAGE_PART.fullmatch(name)
                if name in groups:
                    out += [f"stage{k}" for k in groups[name]]
                elif match and not 1 <= int(match.group(1)) <= count:
                    raise ConfigError(f"{where}: {name!r} does not exist; this teacher has stages 1..{count}")
                elif not match and name != "all" and name not in family.parts:
                    raise ConfigError(
                        f"{where}: this entropy model has no part {name!r}; it has {', '.join(family.parts) or 'none'}"
                    )
                else:
                    out.append(name)
            return tuple(out)

        phases: list[PhaseSpec] = []
        for spec in self.phases:
            where = f"strategy {self.name!r}, phase {spec.name!r}"
            items: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = []  # (name, train, swap)
            for kind in spec.each:
                if kind == "stage":
                    items += [(f"stage{k}", (f"stage{k}",), (f"stage{k}",)) for k in groups["stages"]]
                else:
                    items += [(part.replace("_", "-"), (part,), swapped) for part, swapped in family.phases]
            if not spec.each:
                items = [(spec.name, spec.train, spec.swap)]
            if not items:  # e.g. entropy phases of a family that declares none: the others share its budget
                continue
            for name, train, swap in items:
                phases.append(
                    replace(
                        spec,
                        name=name,
                        fraction=spec.fraction / len(items),
                        train=parts(train, where),
                        swap=parts(swap, where) if spec.host == "teacher" else (),
                        feature_parts=parts(spec.feature_parts, where),
                        each=(),
                    )
                )
        total = sum(p.fraction for p in phases)
        inherit = tuple(p for p in self.inherit if p in family.parts)
        return replace(self, phases=tuple(replace(p, fraction=p.fraction / total) for p in phases), inherit=inherit)


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
            phases.append(
                PhaseSpec(
                    **{
                        **p,
                        **{
                            k: _tuple(p[k], f"phase {i}.{k}")
                            for k in ("train", "swap", "feature_parts", "each")
                            if k in p
                        },
                    }
                )
            )
        except TypeError as exc:
            raise ConfigError(f"strategy phase {i}: {exc}") from None
    return Strategy(
        str(data.get("name", "")),
        tuple(phases),
        str(data.get("description", "")),
        bool(data.get("uses_teacher", True)),
        _tuple(data.get("inherit", []), "inherit"),
        bool(data.get("teacher_init", False)),
    )


def load_strategy(name_or_path: str) -> Strategy:
    """A bundled strategy by name (``configs/strategies/NAME.json``) or a JSON file."""
    return strategy_from_dict(read_json(config_path("strategies", name_or_path), "strategy file", ConfigError))
