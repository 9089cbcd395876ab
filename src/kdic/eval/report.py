"""A study's report, rebuilt from its committed results alone: merged RD curves, BD-rate tables,
the RD, energy and training plots, and the generated section of the study's document.

Nothing here measures: evaluations, baselines, bench and channel energy are read from the results
folder (``kdic.study.runner.measure_missing`` makes the missing ones), so the same results give
the same bytes (plots: with the same matplotlib).
"""

from __future__ import annotations

import csv
import json
import posixpath
import warnings
from pathlib import Path

from ..data import QUALITY_LAMBDAS
from ..errors import KdicError
from ..fileio import atomic_write_bytes
from ..study.plan import Run, Study
from .bdrate import Curve, bd_quality, bd_rate, load_curve
from .energy import plot_energy
from .plot import plot_curves, pyplot, save_figure
from .rd import merge_curves

BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
SMOOTHING = 10  # points of the running mean the training plot draws


def write_report(study: Study, root: Path, output_root: Path | None = None) -> list[Path]:
    """Rebuild ``study``'s curves, tables and plots from the results under ``root`` and rewrite the
    generated section of its document, writing under ``output_root`` (default ``root``) at the same
    relative paths. The files written."""
    out = output_root or root
    written: list[Path] = []
    full_files, like_files = _write_curves(study, root, out, written)
    full = {name: load_curve(path) for name, path in full_files.items()}
    like = {name: load_curve(path) for name, path in like_files.items()}
    baselines = {p.stem: load_curve(p) for p in sorted((root / study.baselines_dir).glob("*.json"))}
    anchor_file, _, selector = study.paths.anchor.partition("#")
    anchor = load_curve(f"{root / anchor_file}#{selector}" if selector else root / anchor_file)
    lines = [*_rd_table(full, anchor, baselines), "", *_strategy_table(study, like), "", *_points_table(study, root)]
    pairs = [(test, base) for test, base in study.report.full_range_pairs if test in full]
    if pairs:
        lines += [
            "",
            "All four lambdas: "
            + ", ".join(f"{test} vs {base} {_both(full[test], full.get(base))}" for test, base in pairs)
            + ".",
        ]
    if (root / study.bench(".json")).is_file():
        bench = json.loads((root / study.bench(".json")).read_text())
        lines += ["", *_complexity_table(study, bench, full, [anchor, *baselines.values()], list(baselines))]
        lines += [
            "",
            "### Complexity and speed, in full (`kdic bench`)",
            "",
            (root / study.bench(".md")).read_text().strip(),
        ]
    if full:
        plot = study.result(study.report.rd_plot.file)
        written += plot_curves(
            list(full.values()),
            _folder_made(out / plot),
            study.report.rd_plot.title,
            [*baselines.values(), anchor],
            study.report.rd_plot.max_bpp,
        )
        lines += ["", f"![RD curves]({_link(study, plot.with_suffix('.png'))})"]
    lines += _energy_section(study, root, out, written)
    lines += ["", *_training_section(study, root, out, written)]
    shipped = sorted((root / study.paths.shipped_weights).glob("*.safetensors"))
    lines += [
        "",
        f"Shipped weights ({sum(p.stat().st_size for p in shipped) / 1e6:.1f} MB, float16): "
        + (", ".join(f"`{p.stem}`" for p in shipped) or "none")
        + ".",
    ]
    lines += [
        "",
        (
            "† the two curves share less than half of the narrower range integrated over (PSNR for BD-rate, "
            "bpp for BD-PSNR): the BD numbers cover little."
        ),
    ]
    pending = [r.name for r in study.runs if not (root / study.point(r)).is_file()]
    lines += ["", f"Runs still pending: {', '.join(pending) if pending else 'none'}."]
    doc = _replace_section((root / study.paths.doc).read_text(encoding="utf-8"), "\n".join(lines))
    atomic_write_bytes(_folder_made(out / study.paths.doc), doc.encode("utf-8"))
    return [*written, out / study.paths.doc]


def _folder_made(path: Path) -> Path:
    """``path``, its folder created (the output root may be a fresh one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _link(study: Study, path: Path) -> str:
    """``path`` (relative to the checkout) as the document links it."""
    return posixpath.relpath(path.as_posix(), Path(study.paths.doc).parent.as_posix())


def _write_curves(study: Study, root: Path, out: Path, written: list[Path]) -> tuple[dict[str, Path], dict[str, Path]]:
    """Each report curve merged from its runs' evaluations: ``<curve>.json`` over every quality done
    (two points at least), and ``<curve>-<n>.json`` over the ``n`` like-for-like qualities once all
    of them are done (what strategy comparisons use)."""
    qualities = study.report.like_for_like_qualities
    full: dict[str, Path] = {}
    like: dict[str, Path] = {}
    for curve in study.report.curves:
        done = [r for r in study.curve_runs(curve) if (root / study.point(r)).is_file()]
        shared = [r for r in done if r.quality in qualities]
        if len(done) >= 2:
            full[curve] = _write_merged(study, root, out / study.curves_dir / f"{curve}.json", done)
        if len(shared) == len(qualities):
            like[curve] = _write_merged(study, root, out / study.curves_dir / f"{curve}-{len(qualities)}.json", shared)
    written += [*full.values(), *like.values()]
    return full, like


def _write_merged(study: Study, root: Path, path: Path, runs: list[Run]) -> Path:
    """One curve (named after its file) from the evaluations of ``runs``, written to ``path``."""
    merged = merge_curves([json.loads((root / study.point(r)).read_text()) for r in runs], path.stem)
    atomic_write_bytes(_folder_made(path), (json.dumps(merged, indent=2) + "\n").encode())
    return path


def _bd(test: Curve, anchor: Curve, psnr: bool = False) -> str:
    """BD-rate (%) or, with ``psnr``, BD-PSNR (dB) as table text; a dagger marks curves that share
    little of the axis integrated over (PSNR for BD-rate, bpp for BD-PSNR)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = f"{(bd_quality if psnr else bd_rate)(test, anchor):+.2f}"
        except (KdicError, ValueError):  # curves that do not overlap at all are reported, not fatal
            return "no overlap"
    return value + (" †" if caught else "")


def _both(test: Curve, anchor: Curve | None) -> str:
    """BD-rate / BD-PSNR of ``test`` against ``anchor``, or "pending" while there is no anchor curve."""
    return f"{_bd(test, anchor)} / {_bd(test, anchor, psnr=True)}" if anchor else "pending"


def _rd_table(full: dict[str, Curve], anchor: Curve, baselines: dict[str, Curve]) -> list[str]:
    """Every curve over all its qualities: its range and its BD-rate against the anchor and each baseline."""
    lines = [
        "### Rate-distortion on Kodak (24 images, real bitstreams)",
        "",
        "| curve | points | bpp range | PSNR range (dB) | BD-rate vs VTM (%) | "
        + " | ".join(f"vs {b} (%)" for b in baselines)
        + " |",
        "|" + "---|" * (5 + len(baselines)),
    ]
    for name, curve in full.items():
        row = [
            name,
            str(len(curve.bpp)),
            f"{min(curve.bpp):.3f}-{max(curve.bpp):.3f}",
            f"{min(curve.quality):.2f}-{max(curve.quality):.2f}",
            _bd(curve, anchor),
        ]
        lines.append("| " + " | ".join([*row, *(_bd(curve, b) for b in baselines.values())]) + " |")
    return lines


def _strategy_table(study: Study, like: dict[str, Curve]) -> list[str]:
    """Like-for-like curves (the same qualities) against the strategy anchors: BD-rate / BD-PSNR."""
    spec = study.report
    lambdas = ", ".join(str(QUALITY_LAMBDAS[q]) for q in spec.like_for_like_qualities)
    lines = [
        f"### Distillation strategies (BD-rate %, PSNR, pchip; lambdas {lambdas})",
        "",
        "Each cell: BD-rate (%) / BD-PSNR (dB). BD-rate needs shared PSNR, BD-PSNR shared bpp.",
        "",
        "| curve | " + " | ".join(f"vs {a.label}" for a in spec.strategy_anchors) + " |",
        "|---|" + "---|" * len(spec.strategy_anchors),
    ]
    for name in spec.strategy_rows:
        if name in like:
            cells = [_both(like[name], like.get(a.curve)) for a in spec.strategy_anchors]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _points_table(study: Study, root: Path) -> list[str]:
    """Every finished run at one quality side by side: the comparison that exists before a curve does."""
    quality = study.report.points_quality
    lines = [
        f"Every run at lambda {QUALITY_LAMBDAS[quality]} (Kodak, real bits):",
        "",
        "| run | bpp | PSNR (dB) | MS-SSIM |",
        "|---|---|---|---|",
    ]
    for run in study.runs:
        point = root / study.point(run)
        if run.quality == quality and point.is_file():
            r = json.loads(point.read_text())["results"]
            lines.append(f"| {run.name} | {r['bpp'][0]:.4f} | {r['psnr-rgb'][0]:.2f} | {r['ms-ssim-rgb'][0]:.4f} |")
    return lines


def _complexity_table(
    study: Study, bench: dict, full: dict[str, Curve], anchors: list[Curve], baseline_names: list[str]
) -> list[str]:
    """Table-2 style: each model's size, cost and speed beside its BD-rates over all qualities."""
    rows = {r["name"]: r for r in bench["models"]}
    settings = bench["settings"]
    lines = [
        "### Table 2 style: complexity and BD-rate (Kodak, all four lambdas)",
        "",
        (
            f"Decode latency at {settings['resolution']}, {bench['machine']['threads']} threads; training "
            f"throughput at batch {settings['train_batch']} x {settings['train_size']}^2."
        ),
        "",
        "| model | params M | MACs T @2048x1024 | CPU decode s | train samples/s | BD vs VTM (%) | "
        + " | ".join(f"vs {b} (%)" for b in baseline_names)
        + " |",
        "|" + "---|" * (6 + len(baseline_names)),
    ]
    for entry in study.report.complexity:
        r = rows[entry.model]
        cells = [
            entry.label,
            f"{r['params_paper'] / 1e6:.2f}",
            f"{r['macs_paper_2k'] / 1e12:.3f}",
            f"{r['decode']['total']:.3f}",
            f"{r.get('train_samples_per_s', float('nan')):.1f}",
        ]
        curve = full.get(entry.curve)
        cells += [_bd(curve, anchor) if curve else "pending" for anchor in anchors]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _energy_section(study: Study, root: Path, out: Path, written: list[Path]) -> list[str]:
    """The measured channel energy (Figs. 4-5): the top-eighth shares as a table, and its plots."""
    measured = root / study.energy(".json")
    if not measured.is_file():
        return []
    models = json.loads(measured.read_text())["models"]
    features = list(models[0]["features"])
    lines = [
        "",
        f"### Channel energy (Figs. 4-5), lambda {study.run(study.report.energy_runs[0]).lmbda}",
        "",
        "| model | " + " | ".join(f"top 1/8 of channels, {f}" for f in features) + " |",
        "|---|" + "---|" * len(features),
    ]
    for model in models:
        lines.append(
            f"| {model['name']} | "
            + " | ".join(f"{100 * model['features'][f]['top_group_share']:.1f}%" for f in features)
            + " |"
        )
    plots = plot_energy(models, _folder_made(out / study.energy("")))
    written += plots
    prefix = f"{study.energy('').name}-"  # the plots are <prefix>sorted, <prefix>unsorted, ...
    return [
        *lines,
        "",
        *(f"![{p.stem.removeprefix(prefix)}]({_link(study, p.relative_to(out))})" for p in plots if p.suffix == ".png"),
    ]


def _training_section(study: Study, root: Path, out: Path, written: list[Path]) -> list[str]:
    """RD loss of the whole student on training crops at equal global steps (the kept logs of
    ``report.training.runs``): what each strategy's teacher phases cost or buy in steps, with a plot."""
    spec = study.report.training
    curves: dict[str, list[tuple[int, float, float]]] = {}
    for run in map(study.run, spec.runs):
        log = root / study.log(run, ".csv")
        if log.is_file():
            with log.open(newline="") as log_file:
                curves[run.kind] = [
                    (int(r["global_step"]), float(r["rd"]), float(r["psnr"]))
                    for r in csv.DictReader(log_file)
                    if r["kind"] == "train" and r["phase"] in spec.phases
                ]
    if not curves:
        return []
    first = study.run(spec.runs[0])  # all at one quality
    lmbda = first.lmbda
    last_step = max(study.run(name).steps for name in spec.runs)
    lines = [
        f"### Training curves, lambda {lmbda} (whole student, training crops)",
        "",
        (
            "Mean RD loss / PSNR (dB) over the logged steps of each window; `-` where the strategy still trains "
            "single stages inside the teacher."
        ),
        "",
        "| strategy | first logged step: RD loss | "
        + " | ".join(f"steps {a}-{min(b, last_step + 1) - 1}" for a, b in spec.windows)
        + " |",
        "|---|---|" + "---|" * len(spec.windows),
    ]
    figure, axis = pyplot().subplots(figsize=(7, 4), dpi=110)
    for strategy, rows in curves.items():
        cells = [f"{rows[0][0]}: {rows[0][1]:.1f}"]
        for start, stop in spec.windows:
            window = [r for r in rows if start <= r[0] < stop]
            means = f"{_mean([r[1] for r in window]):.2f} / {_mean([r[2] for r in window]):.2f}" if window else "-"
            cells.append(means)
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
        recent = [rows[max(0, i - SMOOTHING + 1) : i + 1] for i in range(len(rows))]
        axis.plot([r[0] for r in rows], [_mean([r[1] for r in w]) for w in recent], label=strategy, linewidth=1)
    axis.set(
        xlabel="global step",
        ylabel=f"RD loss ({SMOOTHING}-point running mean)",
        yscale="log",
        title=f"Whole-student RD loss on training crops, lambda {lmbda}",
    )
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    plot = study.result(f"training-q{first.quality}.png")
    written += save_figure(figure, _folder_made(out / plot), ("png",))
    return [*lines, "", f"![training]({_link(study, plot)})"]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _replace_section(doc: str, text: str) -> str:
    """``doc`` with ``text`` between its report markers."""
    head, begin, rest = doc.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise KdicError(f"the study's document has no {BEGIN} ... {END} section to write the report into")
    return f"{head}{BEGIN}\n{text}\n{END}{tail}"
