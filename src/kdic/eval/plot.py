"""RD plots of result files and anchors (PNG and SVG), with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_write
from .bdrate import Curve


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, output: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` atomically as ``output`` with each suffix in ``formats``, then close it."""
    written = []
    base = Path(output)
    for suffix in formats:
        path = base.with_suffix(f".{suffix}")
        atomic_write(path, lambda tmp, suffix=suffix: fig.savefig(tmp, format=suffix))
        written.append(path)
    pyplot().close(fig)
    return written


def plot_curves(curves: list[Curve], output: str | Path, title: str = "", formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Draw bpp against quality for every curve; writes ``output`` with each suffix in ``formats``."""
    fig, ax = pyplot().subplots(figsize=(7, 5), dpi=120)
    for curve in curves:
        ax.plot(curve.bpp, curve.quality, marker="o", markersize=3, linewidth=1.5, label=curve.name)
    metric = curves[0].metric if curves else "psnr-rgb"
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR-RGB (dB)" if metric == "psnr-rgb" else metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, output, formats)
