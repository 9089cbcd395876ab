"""The model-zoo complexity table (``kdic models``): our counts beside the paper's figures."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from ..models import PAPER_COMPLEXITY, available, build_model, get_config
from .complexity import PAPER_INPUT, Complexity, count_complexity


@dataclass(frozen=True)
class ZooRow:
    name: str
    complexity: Complexity
    paper_params_m: float | None
    paper_macs_t: float | None

    @property
    def params_deviation(self) -> float | None:
        """Relative deviation (%) of the paper-convention parameter count from the paper's figure."""
        if self.paper_params_m is None:
            return None
        return 100 * (self.complexity.params_paper / 1e6 / self.paper_params_m - 1)

    @property
    def macs_deviation(self) -> float | None:
        if self.paper_macs_t is None:
            return None
        return 100 * (self.complexity.macs_paper / 1e12 / self.paper_macs_t - 1)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            **self.complexity.to_dict(),
            "paper_params_m": self.paper_params_m,
            "paper_macs_t": self.paper_macs_t,
            "params_deviation_pct": self.params_deviation,
            "macs_deviation_pct": self.macs_deviation,
        }


def zoo_rows(names: list[str] | None = None, quiet: bool = False) -> list[ZooRow]:
    """Count every preset on the meta device at the paper's 1x3x1024x2048 input."""
    rows = []
    for name in tqdm(names or available(), desc="counting", disable=quiet, leave=False):
        with torch.device("meta"):
            model = build_model(get_config(name))
        paper = PAPER_COMPLEXITY.get(name, (None, None))
        rows.append(ZooRow(name, count_complexity(model, PAPER_INPUT), *paper))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render_table(rows: list[ZooRow]) -> str:
    """Markdown table; params in M, MACs in T at 2048x1024."""
    head = (
        "| model | params M (paper conv.) | params M (all) | MACs T @2048x1024 (paper conv.) | MACs T (all ops) "
        "| paper params M | paper FLOPs T | dev. params % | dev. MACs % |"
    )
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        c = r.complexity
        lines.append(
            f"| {r.name} | {c.params_paper / 1e6:.2f} | {c.params_total / 1e6:.2f} | {c.macs_paper / 1e12:.3f} "
            f"| {c.macs_total / 1e12:.3f} | {_fmt(r.paper_params_m, '.2f')} | {_fmt(r.paper_macs_t, '.2f')} "
            f"| {_fmt(r.params_deviation, '+.2f')} | {_fmt(r.macs_deviation, '+.2f')} |"
        )
    return "\n".join(lines)
