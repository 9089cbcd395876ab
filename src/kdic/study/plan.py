"""A study is data (``configs/studies/*.json``): its runs (what each trains, at which quality, for
how many steps, from which run), the flags every run shares, a cost model, and what its report
compares.

A plan file is untrusted input: every field is checked for its name and type, run, curve and
model names match a strict charset (they become file names and arguments), paths written to stay
inside the checkout, and ``after`` must name an earlier teacher run that keeps its weights, so a
run can always start from committed files and the plan has no cycles. Qualities index the
library's ``QUALITY_LAMBDAS``; no lambda is written down twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..configs import config_path
from ..data import QUALITY_LAMBDAS
from ..errors import ConfigError
from ..fileio import read_json

TEACHER_KIND = "teacher"  # every other kind is the strategy a student is distilled with
ROLES = ("teacher", "student")  # what the evaluation-time cost is given for
NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # no dots, no separators, no leading dash
FLAG = re.compile(r"[a-z][a-z0-9_]{0,39}")
LABEL = re.compile(r"[\w ().,+-]{1,80}")  # table and plot text: no markdown cell separators, no line breaks
# Flags the runner sets from each run itself: a plan cannot set them for all runs at once.
RUNNER_FLAGS = frozenset(
    {
        "data",
        "val",
        "run_dir",
        "resume",
        "model",
        "init",
        "teacher",
        "student",
        "strategy",
        "lmbda",
        "steps",
        "lr",
        "decay_at",
        "seed",
        "teacher_init",
    }
)
FlagValue = int | float | str | bool


@dataclass(frozen=True)
class Run:
    """One training run. ``after`` is the run whose kept weights a teacher fine-tunes or a student
    distils; ``keep`` is where the float16 weights stay for good (package data or results), which is
    what later runs read, so a fresh machine can go on where the last session stopped."""

    name: str
    kind: str
    quality: int
    steps: int
    lr: float
    decay_at: float
    seed: int = 0
    after: str | None = None
    keep: str | None = None
    teacher_init: bool = False  # ask for the pruned-teacher start (strategies may also imply it)
    curve: str | None = None  # the report curve this run is a point of

    def __post_init__(self) -> None:
        where = f"run {self.name!r}"
        if self.quality not in QUALITY_LAMBDAS:
            raise ConfigError(f"{where}: quality must be one of {sorted(QUALITY_LAMBDAS)}, got {self.quality}")
        if self.steps < 1 or self.seed < 0 or self.lr <= 0 or not 0 < self.decay_at < 1:
            raise ConfigError(f"{where}: needs steps >= 1, seed >= 0, lr > 0 and decay_at in (0, 1)")
        if self.is_teacher and self.teacher_init:
            raise ConfigError(f"{where}: teacher_init is for students")
        if not self.is_teacher and self.after is None:
            raise ConfigError(f"{where}: a student needs 'after' (the teacher run it distils)")

    @property
    def is_teacher(self) -> bool:
        return self.kind == TEACHER_KIND

    @property
    def lmbda(self) -> float:
        return QUALITY_LAMBDAS[self.quality]


@dataclass(frozen=True)
class StudyPaths:
    """Where a study's files are, relative to the checkout it runs in."""

    runs: str  # run folders with optimizer states: not committed
    results: str  # what a run leaves for good, and the report's tables and plots
    doc: str  # the document whose generated section the report rewrites
    shipped_weights: str  # where the weights this study shipped are kept (the report states their size)
    train_data: str
    eval_data: str
    anchor: str  # the reference curve of the BD-rate columns, FILE#dataset/method


@dataclass(frozen=True)
class AnchorColumn:
    curve: str
    label: str


@dataclass(frozen=True)
class ComplexityRow:
    label: str
    curve: str
    model: str  # the model's row in the bench report


@dataclass(frozen=True)
class RDPlot:
    file: str  # in the results folder, without suffix
    title: str
    max_bpp: float


@dataclass(frozen=True)
class TrainingCurves:
    runs: tuple[str, ...]
    phases: tuple[str, ...]  # logged phases whose RD loss is the whole student's
    windows: tuple[tuple[int, int], ...]  # [start, stop) global steps


@dataclass(frozen=True)
class ReportSpec:
    """What the report compares; every name refers to a curve or a run of the study."""

    curves: tuple[str, ...]  # in table and plot order
    like_for_like_qualities: tuple[int, ...]  # the qualities every strategy comparison uses
    strategy_rows: tuple[str, ...]
    strategy_anchors: tuple[AnchorColumn, ...]
    points_quality: int  # every finished run at this quality side by side
    full_range_pairs: tuple[tuple[str, str], ...]  # (test, anchor) curves compared over all qualities
    complexity: tuple[ComplexityRow, ...]
    rd_plot: RDPlot
    energy_runs: tuple[str, ...]
    training: TrainingCurves


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    teacher: str  # model presets
    student: str
    paths: StudyPaths
    train_flags: tuple[tuple[str, FlagValue], ...]
    seconds_per_step: Mapping[str, float]  # per kind, measured: the runner's time estimate
    eval_minutes: Mapping[str, float]  # per role
    runs: tuple[Run, ...]  # in the order they are started
    report: ReportSpec

    def __post_init__(self) -> None:
        _check_runs(self)
        _check_report(self)

    def run(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise ConfigError(f"study {self.name!r} has no run {name[:64]!r}")

    def source_weights(self, run: Run) -> str:
        """The kept weights ``run`` fine-tunes (a teacher) or distils (a student)."""
        source = self.run(run.after) if run.after else None
        if source is None or source.keep is None:
            raise ConfigError(f"run {run.name!r} starts from no kept weights")
        return source.keep

    def energy_models(self) -> list[tuple[str, str]]:
        """(name, kept weights) of the runs whose channel energy the report compares."""
        runs = [self.run(name) for name in self.report.energy_runs]
        return [(r.curve, r.keep) for r in runs if r.curve and r.keep]  # both are checked at load

    def curve_runs(self, curve: str) -> list[Run]:
        """The runs that are the points of ``curve``, by quality."""
        return sorted((r for r in self.runs if r.curve == curve), key=lambda r: r.quality)

    def minutes(self, run: Run) -> float:
        """Estimated CPU minutes (one thread): training, then the evaluation of the exported weights."""
        role = TEACHER_KIND if run.is_teacher else "student"
        return run.steps * self.seconds_per_step[run.kind] / 60 + self.eval_minutes[role]

    def run_dir(self, run: Run) -> Path:
        return Path(self.paths.runs) / run.name

    def point(self, run: Run) -> Path:
        """The run's evaluation (real bitstreams on the eval set): it exists once the run is done."""
        return Path(self.paths.results) / "points" / f"{run.name}.json"

    def log(self, run: Run, suffix: str) -> Path:
        """The run's kept training log (``.csv``) or config and summary (``.json``)."""
        return Path(self.paths.results) / "logs" / f"{run.name}{suffix}"

    def result(self, name: str) -> Path:
        """A file the report reads or writes in the results folder."""
        return Path(self.paths.results) / name

    @property
    def curves_dir(self) -> Path:
        """The merged curves, named after the evaluation set (e.g. ``results/repro/kodak``)."""
        return Path(self.paths.results) / Path(self.paths.eval_data).name

    @property
    def baselines_dir(self) -> Path:
        return self.curves_dir / "baselines"

    def bench(self, suffix: str) -> Path:
        """The bench report of the compared models, ``.json`` and ``.md``."""
        return self.result(f"bench{suffix}")

    def energy(self, suffix: str) -> Path:
        """The channel energy of ``report.energy_runs``: ``.json``, and ``""`` for the plots' prefix."""
        return self.result(f"energy-q{self.run(self.report.energy_runs[0]).quality}{suffix}")


def _check_runs(study: Study) -> None:
    """Names once each, a cost for every kind, ``after`` an earlier teacher with kept weights."""
    seen: dict[str, Run] = {}
    for run in study.runs:
        where = f"run {run.name!r}"
        if run.name in seen:
            raise ConfigError(f"{where} is listed twice")
        if run.kind not in study.seconds_per_step:
            raise ConfigError(f"{where}: cost.seconds_per_step has no entry for kind {run.kind!r}")
        if run.after is not None:
            source = seen.get(run.after)
            if source is None:
                raise ConfigError(f"{where}: 'after' must name an earlier run, got {run.after!r}")
            if not source.is_teacher or source.keep is None:
                raise ConfigError(f"{where}: 'after' must name a teacher run that keeps its weights ('keep')")
        if run.curve is not None and run.curve not in study.report.curves:
            raise ConfigError(f"{where}: curve {run.curve!r} is not one of report.curves")
        seen[run.name] = run
    keeps = [r.keep for r in study.runs if r.keep is not None]
    if len(set(keeps)) != len(keeps):
        raise ConfigError("two runs keep their weights in the same file")
    if set(study.eval_minutes) != set(ROLES):
        raise ConfigError(f"cost.eval_minutes needs exactly {ROLES}")


def _check_report(study: Study) -> None:
    """Every curve and run the report names exists, and each table compares like with like."""
    report = study.report
    for curve in report.curves:
        qualities = [r.quality for r in study.curve_runs(curve)]
        if not qualities:
            raise ConfigError(f"report: curve {curve!r} has no run")
        if len(set(qualities)) != len(qualities):
            raise ConfigError(f"report: curve {curve!r} has two runs at one quality")
    named = [
        *report.strategy_rows,
        *(a.curve for a in report.strategy_anchors),
        *(c for pair in report.full_range_pairs for c in pair),
        *(row.curve for row in report.complexity),
    ]
    for curve in named:
        if curve not in report.curves:
            raise ConfigError(f"report: {curve!r} is not one of report.curves")
    if len(set(report.like_for_like_qualities)) != len(report.like_for_like_qualities):
        raise ConfigError("report.like_for_like_qualities: each quality once")
    for quality in (*report.like_for_like_qualities, report.points_quality):
        if quality not in QUALITY_LAMBDAS:
            raise ConfigError(f"report: quality must be one of {sorted(QUALITY_LAMBDAS)}, got {quality}")
    for what, names in (("energy_runs", report.energy_runs), ("training.runs", report.training.runs)):
        runs = [study.run(name) for name in names]
        if len({r.quality for r in runs}) != 1:
            raise ConfigError(f"report.{what}: needs runs at one quality")
        if what == "energy_runs" and any(r.keep is None or r.curve is None for r in runs):
            raise ConfigError(
                "report.energy_runs: every run needs 'keep' (the weights measured) and 'curve' (its name in the table)"
            )
    if len({study.run(name).kind for name in report.training.runs}) != len(report.training.runs):
        raise ConfigError("report.training.runs: one run per kind (the table and the plot name them by kind)")
    if any(start >= stop for start, stop in report.training.windows):
        raise ConfigError("report.training.windows: each window is [start, stop) with start < stop")


# -- loading -----------------------------------------------------------------------------------
def _fields(data: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """``data`` as an object with all of ``required`` and nothing but ``optional`` besides."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object, got {type(data).__name__}")
    unknown = sorted(str(k)[:40] for k in set(data) - set(required) - set(optional))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; known: {', '.join((*required, *optional))}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{where}: missing field(s) {missing}")
    return data


def _typed(value: Any, kind: type, where: str) -> Any:
    """``value`` if it is a JSON ``kind``; an integer passes as a float, a boolean never as a number."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where}: expected {kind.__name__}, got {type(value).__name__} {str(value)[:40]!r}")
    return value


def _list(value: Any, where: str) -> list:
    return _typed(value, list, where)


def _name(value: Any, where: str) -> str:
    text = _typed(value, str, where)
    if NAME.fullmatch(text) is None:
        raise ConfigError(f"{where}: {text[:64]!r} is not a name (lower-case letters, digits and '-')")
    return text


def _label(value: Any, where: str) -> str:
    text = _typed(value, str, where)
    if LABEL.fullmatch(text) is None:
        raise ConfigError(f"{where}: {text[:80]!r} is not a plain label (letters, digits, spaces, ().,+-)")
    return text


def _names(value: Any, where: str) -> tuple[str, ...]:
    return tuple(_name(v, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


def _ints(value: Any, where: str) -> tuple[int, ...]:
    return tuple(_typed(v, int, f"{where}[{i}]") for i, v in enumerate(_list(value, where)))


def _pairs(value: Any, where: str, item) -> tuple[tuple[Any, Any], ...]:
    pairs = []
    for i, pair in enumerate(_list(value, where)):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{where}[{i}]: expected a pair")
        pairs.append((item(pair[0], f"{where}[{i}][0]"), item(pair[1], f"{where}[{i}][1]")))
    return tuple(pairs)


def _argument(value: Any, where: str) -> str:
    """A string that reaches a command line as one argument: one line, not empty, not option-like."""
    text = _typed(value, str, where)
    if not text or text.startswith("-") or any(c in text for c in "\n\0"):
        raise ConfigError(f"{where}: {text[:80]!r} cannot be a command-line value")
    return text


def _path(value: Any, where: str, written: bool) -> str:
    """A path the study reads, or writes (then relative and inside the checkout)."""
    text = _argument(value, where)
    if written and (Path(text).is_absolute() or ".." in Path(text).parts):
        raise ConfigError(f"{where}: {text[:80]!r} must be a relative path inside the checkout")
    return text


def _run(data: Any, where: str) -> Run:
    data = _fields(
        data,
        where,
        ("name", "kind", "quality", "steps", "lr", "decay_at"),
        ("seed", "after", "keep", "teacher_init", "curve"),
    )
    where = f"run {_name(data['name'], where + '.name')!r}"
    return Run(
        name=data["name"],
        kind=_name(data["kind"], f"{where}.kind"),
        quality=_typed(data["quality"], int, f"{where}.quality"),
        steps=_typed(data["steps"], int, f"{where}.steps"),
        lr=_typed(data["lr"], float, f"{where}.lr"),
        decay_at=_typed(data["decay_at"], float, f"{where}.decay_at"),
        seed=_typed(data.get("seed", 0), int, f"{where}.seed"),
        after=_name(data["after"], f"{where}.after") if "after" in data else None,
        keep=_path(data["keep"], f"{where}.keep", written=True) if "keep" in data else None,
        teacher_init=_typed(data.get("teacher_init", False), bool, f"{where}.teacher_init"),
        curve=_name(data["curve"], f"{where}.curve") if "curve" in data else None,
    )


def _flags(data: Any) -> tuple[tuple[str, FlagValue], ...]:
    flags = []
    for name, value in _typed(data, dict, "train_flags").items():
        where = f"train_flags.{str(name)[:40]}"
        if FLAG.fullmatch(name) is None or name in RUNNER_FLAGS:
            raise ConfigError(f"{where}: not a flag a plan may set (the runner sets {', '.join(sorted(RUNNER_FLAGS))})")
        if value is False or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where}: expected a number, a string or true (a bare flag)")
        flags.append((name, _argument(value, where) if isinstance(value, str) else value))
    return tuple(flags)


def _costs(data: Any, where: str) -> Mapping[str, float]:
    return MappingProxyType(
        {_name(k, f"{where} key"): _typed(v, float, f"{where}.{k}") for k, v in _typed(data, dict, where).items()}
    )


def _report(data: Any) -> ReportSpec:
    keys = (
        "curves",
        "like_for_like_qualities",
        "strategy_table",
        "points_quality",
        "full_range_pairs",
        "complexity",
        "rd_plot",
        "energy_runs",
        "training",
    )
    data = _fields(data, "report", keys)
    table = _fields(data["strategy_table"], "report.strategy_table", ("rows", "anchors"))
    anchors = []
    for i, entry in enumerate(_list(table["anchors"], "report.strategy_table.anchors")):
        where = f"report.strategy_table.anchors[{i}]"
        entry = _fields(entry, where, ("curve",), ("label",))
        curve = _name(entry["curve"], f"{where}.curve")
        anchors.append(AnchorColumn(curve, _label(entry.get("label", curve), f"{where}.label")))
    complexity = []
    for i, entry in enumerate(_list(data["complexity"], "report.complexity")):
        where = f"report.complexity[{i}]"
        entry = _fields(entry, where, ("label", "curve", "model"))
        complexity.append(
            ComplexityRow(
                label=_label(entry["label"], f"{where}.label"),
                curve=_name(entry["curve"], f"{where}.curve"),
                model=_name(entry["model"], f"{where}.model"),
            )
        )
    plot = _fields(data["rd_plot"], "report.rd_plot", ("file", "title", "max_bpp"))
    training = _fields(data["training"], "report.training", ("runs", "phases", "windows"))
    return ReportSpec(
        curves=_names(data["curves"], "report.curves"),
        like_for_like_qualities=_ints(data["like_for_like_qualities"], "report.like_for_like_qualities"),
        strategy_rows=_names(table["rows"], "report.strategy_table.rows"),
        strategy_anchors=tuple(anchors),
        points_quality=_typed(data["points_quality"], int, "report.points_quality"),
        full_range_pairs=_pairs(data["full_range_pairs"], "report.full_range_pairs", _name),
        complexity=tuple(complexity),
        rd_plot=RDPlot(
            _name(plot["file"], "report.rd_plot.file"),
            _label(plot["title"], "report.rd_plot.title"),
            _typed(plot["max_bpp"], float, "report.rd_plot.max_bpp"),
        ),
        energy_runs=_names(data["energy_runs"], "report.energy_runs"),
        training=TrainingCurves(
            _names(training["runs"], "report.training.runs"),
            _names(training["phases"], "report.training.phases"),
            _pairs(training["windows"], "report.training.windows", lambda v, where: _typed(v, int, where)),
        ),
    )


def study_from_dict(data: Any) -> Study:
    """A ``Study`` from a plan file's parsed JSON, or a ``ConfigError`` naming the first bad field."""
    data = _fields(
        data, "study", ("name", "models", "paths", "train_flags", "cost", "runs", "report"), ("description",)
    )
    models = _fields(data["models"], "models", ROLES)
    paths = _fields(data["paths"], "paths", tuple(StudyPaths.__dataclass_fields__))
    written = ("runs", "results", "doc", "shipped_weights")
    cost = _fields(data["cost"], "cost", ("seconds_per_step", "eval_minutes"))
    return Study(
        name=_name(data["name"], "name"),
        description=_typed(data.get("description", ""), str, "description"),
        teacher=_name(models["teacher"], "models.teacher"),
        student=_name(models["student"], "models.student"),
        paths=StudyPaths(**{k: _path(v, f"paths.{k}", written=k in written) for k, v in paths.items()}),
        train_flags=_flags(data["train_flags"]),
        seconds_per_step=_costs(cost["seconds_per_step"], "cost.seconds_per_step"),
        eval_minutes=_costs(cost["eval_minutes"], "cost.eval_minutes"),
        runs=tuple(_run(r, f"runs[{i}]") for i, r in enumerate(_list(data["runs"], "runs"))),
        report=_report(data["report"]),
    )


def load_study(name_or_path: str) -> Study:
    """A bundled study by name (``configs/studies/NAME.json``) or a plan file ending in .json."""
    return study_from_dict(read_json(config_path("studies", name_or_path), "study file", ConfigError))
