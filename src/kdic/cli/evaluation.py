"""``kdic eval``, ``merge``, ``bdrate``, ``plot``, ``baselines`` and ``energy``: measuring codecs and features."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..data import DEFAULT_RATES
from ..errors import KdicError
from ..eval.bdrate import METHODS, METRICS
from .common import add_quiet, add_refine_argument, checked_folder, command, write_json

VTM_ANCHOR = "../shared/data/anchors/summary_psnr_rgb.json#kodak/compressai/vtm"


def _add_metric(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metric", default=METRICS[0], choices=list(METRICS), help="quality axis")


def _add_images(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="image folder, e.g. the one 'kdic datasets path kodak' prints")
    p.add_argument("--limit", type=int, help="only the first N images")


@command("eval", "real-bitstream RD evaluation of checkpoints (one curve), CompressAI-style JSON")
def _configure_eval(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument(
        "--weights",
        nargs="+",
        required=True,
        help="weights files: one per rate point, or variable-rate ones coded at several lambdas each",
    )
    p.add_argument("--lmbdas", type=float, nargs="+", metavar="L", help="rate points of variable-rate weights")
    p.add_argument(
        "--rates",
        type=int,
        help="variable-rate weights without --lmbdas: this many lambdas log-spaced "
        f"over their range (default: {DEFAULT_RATES})",
    )
    _add_images(p)
    p.add_argument("-o", "--output", required=True, help="results JSON to write")
    p.add_argument("--name", help="curve name (default: the model name)")
    p.add_argument("--bitstreams", help="existing folder to keep the .kdic files in")
    add_refine_argument(p)
    add_quiet(p)
    p.set_defaults(func=evaluate)


def evaluate(args: argparse.Namespace) -> int:
    if args.lmbdas and args.rates:
        raise KdicError("--lmbdas and --rates both pick the rate points of variable-rate weights; pass one")
    bitstreams = Path(args.bitstreams) if args.bitstreams else None
    if bitstreams is not None and not bitstreams.is_dir():
        raise KdicError(f"bitstream folder {bitstreams} does not exist")
    checked_folder(args.output)
    from ..eval.rd import evaluate_weights
    from ..eval.validation import load_validation

    images = load_validation(args.data, args.limit)
    rates = tuple(args.lmbdas) if args.lmbdas else args.rates or DEFAULT_RATES
    result = evaluate_weights(
        args.weights, images, args.name, Path(args.data).name, bitstreams, args.quiet, rates, args.refine
    )
    write_json(result, args.output)
    if not args.quiet:
        r, meta = result["results"], result["meta"]
        for i, bpp in enumerate(r["bpp"]):
            ms, lmbda = r["ms-ssim-rgb"][i], meta["lmbda"][i]
            print(
                f"{meta['weights'][i]} (lambda {'-' if lmbda is None else f'{lmbda:.5g}'}): {bpp:.4f} bpp "
                f"(estimate {r['estimated_bpp'][i]:.4f}), PSNR {r['psnr-rgb'][i]:.2f} dB, "
                f"MS-SSIM {'-' if ms is None else f'{ms:.4f}'}, encode {r['encoding_time'][i]:.3f} s, "
                f"decode {r['decoding_time'][i]:.3f} s"
            )
        print(f"results written to {args.output}")
    return 0


@command("merge", "one curve from several 'kdic eval' results of the same images (a curve split by --lmbdas)")
def _configure_merge(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("curves", nargs="+", help="'kdic eval' result files")
    p.add_argument("-o", "--output", required=True, help="merged results JSON to write")
    p.add_argument("--name", help="curve name (default: the first file's)")
    p.set_defaults(func=merge)


def merge(args: argparse.Namespace) -> int:
    from ..eval.rd import merge_curves
    from ..fileio import read_json

    checked_folder(args.output)
    curves = [read_json(path, "result file", KdicError) for path in args.curves]
    try:
        merged = merge_curves(curves, args.name or str(curves[0]["name"]))
    except ValueError as exc:
        raise KdicError(f"cannot merge: {exc}") from None
    except (KeyError, IndexError, TypeError, AttributeError):
        raise KdicError("cannot merge: a file is not a 'kdic eval' result (no results, meta or per_image)") from None
    write_json(merged, args.output)
    print(f"{len(merged['results']['bpp'])} rate points written to {args.output}")
    return 0


@command("bdrate", "BD-rate and BD-PSNR of curves against an anchor curve")
def _configure_bdrate(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("tests", nargs="+", help="result files (FILE or FILE#dataset/method)")
    p.add_argument("--anchor", required=True, help=f"anchor curve, e.g. {VTM_ANCHOR}")
    _add_metric(p)
    p.add_argument("--method", default=METHODS[0], choices=list(METHODS), help="interpolation of the curves")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=bdrate)


def bdrate(args: argparse.Namespace) -> int:
    import json

    from ..eval.bdrate import bd_quality, bd_rate, load_curve

    anchor = load_curve(args.anchor, args.metric)
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for spec in args.tests:
            test = load_curve(spec, args.metric)
            rows.append(
                {
                    "test": test.name,
                    "anchor": anchor.name,
                    "metric": args.metric,
                    "method": args.method,
                    "bd_rate_pct": bd_rate(test, anchor, args.method),
                    "bd_quality": bd_quality(test, anchor, args.method),
                }
            )
    for warning in caught:
        print(f"kdic: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    unit = "dB" if args.metric == "psnr-rgb" else ""
    for r in rows:
        print(
            f"{r['test']} vs {r['anchor']} ({r['method']}, {r['metric']}): BD-rate {r['bd_rate_pct']:+.2f} %, "
            f"BD-{args.metric} {r['bd_quality']:+.3f} {unit}"
        )
    return 0


@command("plot", "RD plot (PNG and SVG) of result files and anchors")
def _configure_plot(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("curves", nargs="+", help="result files (FILE or FILE#dataset/method)")
    p.add_argument("-o", "--output", required=True, help="output path without suffix; .png and .svg are written")
    _add_metric(p)
    p.add_argument(
        "--anchors",
        nargs="*",
        default=[],
        metavar="CURVE",
        help="other codecs to compare with (same forms), drawn dashed",
    )
    p.add_argument("--max-bpp", type=float, help="show bpp from 0 to this only (the y range follows)")
    p.add_argument("--title", default="", help="plot title")
    p.set_defaults(func=plot)


def plot(args: argparse.Namespace) -> int:
    checked_folder(args.output)
    if args.max_bpp is not None and args.max_bpp <= 0:
        raise KdicError(f"--max-bpp must be positive, got {args.max_bpp}")
    from ..eval.bdrate import load_curve
    from ..eval.plot import plot_curves

    curves = [load_curve(spec, args.metric) for spec in args.curves]
    anchors = [load_curve(spec, args.metric) for spec in args.anchors]
    for path in plot_curves(curves, args.output, args.title, anchors, args.max_bpp):
        print(path)
    return 0


@command("baselines", "measure classical codecs (JPEG, WebP, AVIF, JPEG 2000, ...) like kdic")
def _configure_baselines(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    _add_images(p)
    p.add_argument("-o", "--output", required=True, help="existing folder for one JSON per codec")
    p.add_argument("--codecs", nargs="*", help="only these codecs (default: all available)")
    add_quiet(p)
    p.set_defaults(func=baselines)


def baselines(args: argparse.Namespace) -> int:
    output = Path(args.output)
    if not output.is_dir():
        raise KdicError(f"output folder {output} does not exist")
    from ..eval.baselines import available_codecs, evaluate_codec
    from ..eval.validation import load_validation

    images = load_validation(args.data, args.limit)
    codecs, notices = available_codecs()
    for notice in notices:
        print(f"kdic: notice: {notice}", file=sys.stderr)
    unknown = sorted(set(args.codecs or []) - {codec.name for codec in codecs})
    if unknown:
        names = ", ".join(codec.name for codec in codecs) or "none"
        raise KdicError(f"--codecs: not available here: {', '.join(unknown)} (available: {names})")
    for codec in codecs:
        if args.codecs and codec.name not in args.codecs:
            continue
        result = evaluate_codec(codec, images, Path(args.data).name, args.quiet)
        write_json(result, output / f"{codec.name}.json")
        if not args.quiet:
            bpp = result["results"]["bpp"]
            print(f"{codec.name}: {len(bpp)} points, {min(bpp):.3f}-{max(bpp):.3f} bpp -> {output / codec.name}.json")
    return 0


@command("energy", "channel-wise energy of encoder features (the paper's Figs. 4-5)")
def _configure_energy(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--weights", nargs="+", required=True, help="weights files to analyse")
    p.add_argument("--names", nargs="+", help="one display name per weights file")
    _add_images(p)
    p.add_argument("-o", "--output", required=True, help="results JSON to write")
    p.add_argument("--plot", help="also draw PREFIX-sorted and PREFIX-unsorted (.png and .svg)")
    add_quiet(p)
    p.set_defaults(func=energy)


def energy(args: argparse.Namespace) -> int:
    if args.names and len(args.names) != len(args.weights):
        raise KdicError(f"--names needs one name per weights file ({len(args.weights)})")
    checked_folder(args.output)
    if args.plot:
        checked_folder(args.plot)
    from ..checkpoint import load
    from ..eval.energy import channel_energy, energy_report, plot_energy
    from ..eval.validation import load_validation

    images = load_validation(args.data, args.limit)
    reports = []
    for i, weights in enumerate(args.weights):
        model = load(weights)
        name = args.names[i] if args.names else model.config.name
        reports.append(energy_report(name, str(weights), channel_energy(model, images, args.quiet)))
    write_json({"dataset": Path(args.data).name, "images": len(images), "models": reports}, args.output)
    if not args.quiet:
        for report in reports:
            shares = ", ".join(f"{f} {100 * e['top_group_share']:.1f}%" for f, e in report["features"].items())
            print(f"{report['name']}: energy in the top 1/8 of channels: {shares}")
        print(f"results written to {args.output}")
    if args.plot:
        for path in plot_energy(reports, args.plot):
            if not args.quiet:
                print(path)
    return 0
