"""RD plots of result files and anchors (PNG and SVG), with the Agg backend (no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from ..fileio import atomic_write_file
from .bdrate import Curve


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "kdic"  # stable element ids: a redrawn plot diffs only where it changed
    import matplotlib.pyplot as plt

    return plt


_NO_DATE = {"svg": {"Date": None}, "pdf": {"CreationDate": None}}  # no timestamp: same data, same file


def save_figure(fig, output: str | Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write ``fig`` atomically as ``output`` with each suffix in ``formats``, then close it."""
    written = []
    base = Path(output)
    for suffix in formats:
        path = base.with_suffix(f".{suffix}")

        def write(f: BinaryIO, suffix: str = suffix) -> None:
            fig.savefig(f, format=suffix, metadata=_NO_DATE.get(suffix))

        atomic_write_file(path, write)
        written.append(path)
    pyplot().close(fig)
    return written


def plot_curves(
    curves: list[Curve],
    output: str | Path,
    title: str = "",
    anchors: list[Curve] | None = None,
    max_bpp: float | None = None,
    formats: tuple[str, ...] = ("png", "svg"),
) -> list[Path]:
    """Draw quality against bpp: ``curves`` solid, ``anchors`` (other codecs) dashed in their own
    palette, so no two lines look alike (up to 20 curves and 8 anchors); ``max_bpp`` zooms on the
    low-rate end where small LIC models sit."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    anchors = anchors or []
    solid, dashed = plt.get_cmap("tab20" if len(curves) > 10 else "tab10"), plt.get_cmap("Dark2")
    styles = [(curve, solid(i % solid.N), "-", "o") for i, curve in enumerate(curves)] + [
        (curve, dashed(i % dashed.N), "--", "s") for i, curve in enumerate(anchors)
    ]
    for curve, colour, linestyle, marker in styles:
        ax.plot(
            curve.bpp,
            curve.quality,
            color=colour,
            linestyle=linestyle,
            marker=marker,
            markersize=3,
            linewidth=1.5 if linestyle == "-" else 1.0,
            label=curve.name,
        )
    if max_bpp is not None:
        shown = [q for curve, *_ in styles for b, q in zip(curve.bpp, curve.quality) if b <= max_bpp]
        ax.set_xlim(0, max_bpp)
        if shown:
            margin = 0.05 * (max(shown) - min(shown) or 1.0)
            ax.set_ylim(min(shown) - margin, max(shown) + margin)
    metric = styles[0][0].metric if styles else "psnr-rgb"
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR-RGB (dB)" if metric == "psnr-rgb" else metric)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if len(styles) > 10 else 1)
    fig.tight_layout()
    return save_figure(fig, output, formats)
