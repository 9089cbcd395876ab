"""Recipes: the paper's runs as data (``configs/recipes/*.json``), and what a run will cost.

A recipe names a command (``train`` or ``distill``), the values of its options (model or student,
strategy, steps, batch, crop, lr, schedule, precision), the lambdas it may run at, where each value
comes from, and which values the paper leaves unstated (and what kdic chose for them). On the command
line ``--recipe NAME`` makes those values the defaults; any option given explicitly wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configs import config_path
from ..errors import ConfigError
from ..fileio import read_json

COMMANDS = ("train", "distill")


@dataclass(frozen=True)
class Recipe:
    name: str
    command: str
    args: dict
    lmbdas: tuple[float, ...] = ()
    description: str = ""
    source: str = ""
    teacher_model: str | None = None
    paper_throughput: dict = field(default_factory=dict)
    unstated: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ConfigError(
                f"recipe {self.name!r}: command must be one of {', '.join(COMMANDS)}, got {self.command!r}"
            )
        if any(not (isinstance(v, (int, float)) and 0 < v < 1) for v in self.lmbdas):
            raise ConfigError(f"recipe {self.name!r}: lambdas must be numbers in (0, 1)")

    def check_lmbda(self, lmbda: float | None) -> None:
        """A recipe runs at one of its lambdas (the paper's set), never silently at another."""
        if not self.lmbdas:
            return
        if lmbda is None or not any(abs(lmbda - v) <= 1e-9 for v in self.lmbdas):
            raise ConfigError(
                f"recipe {self.name} runs at one of the lambdas {', '.join(f'{v:g}' for v in self.lmbdas)}"
                f" (got {lmbda}); pass --lmbda with one of them"
            )


def load_recipe(spec: str) -> Recipe:
    """A bundled recipe by name or a recipe JSON file (validated: unknown keys are an error)."""
    path = config_path("recipes", spec)
    data = read_json(path, "recipe", ConfigError)
    if not isinstance(data, dict) or not isinstance(data.get("args"), dict):
        raise ConfigError(f"{path} is not a recipe (a JSON object with 'command' and 'args')")
    known = set(Recipe.__dataclass_fields__)
    if set(data) - known:
        raise ConfigError(f"{path}: unknown recipe keys {sorted(set(data) - known)}")
    try:
        return Recipe(**{**data, "lmbdas": tuple(data.get("lmbdas", ()))})
    except TypeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def device_hours(steps: int, samples_per_step: int, samples_per_second: float) -> float:
    return steps * samples_per_step / samples_per_second / 3600


def run_plan(
    command: str,
    model_config,
    train_config,
    phases: list[tuple[str, int]],
    device: str = "auto",
    recipe: Recipe | None = None,
    throughput: float | None = None,
) -> dict:
    """What ``--dry-run`` prints: the resolved run, its steps, and the device-hours it takes at the
    paper's throughput and at a measured one (``throughput`` samples/s from ``kdic bench``, or two
    timed steps of the trained model here: for a distillation, of the student alone, which the
    stage-wise phases exceed by the teacher's forward pass)."""
    from dataclasses import asdict

    from ..bench.throughput import training_step_seconds
    from ..models import LearnedImageCodec
    from .distributed import resolve_device

    resolved = resolve_device(device)
    per_step = train_config.batch_size * train_config.accumulate
    measured = throughput
    if measured is None:
        model = LearnedImageCodec(model_config)
        seconds = training_step_seconds(
            model, train_config.batch_size, train_config.crop, steps=2, warmup=1, device=resolved
        )
        measured = train_config.batch_size / seconds
    hours = {f"measured ({resolved}, {measured:.3g} samples/s)": device_hours(train_config.steps, per_step, measured)}
    if recipe is not None and recipe.paper_throughput:
        paper = recipe.paper_throughput
        hours[f"paper ({paper['device']}, {paper['samples_per_second']} samples/s)"] = device_hours(
            train_config.steps, per_step, paper["samples_per_second"]
        )
    return {
        "command": command,
        "recipe": recipe.name if recipe else None,
        "model": model_config.name,
        "phases": [{"name": n, "steps": s} for n, s in phases],
        "steps": train_config.steps,
        "samples_per_step": per_step,
        "train": asdict(train_config),
        "unstated_by_the_paper": recipe.unstated if recipe else {},
        "device_hours": hours,
    }
