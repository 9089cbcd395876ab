"""``kdic models``, ``bench``, ``info``, ``export``, ``import``, ``datasets`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import KdicError
from .common import add_quiet, checked_folder, command, write_json


@command("models", "list the model zoo with params and MACs beside the paper's figures")
def _configure_models(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("names", nargs="*", help="presets to count (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_quiet(p, "no progress bar")
    p.set_defaults(func=models)


def models(args: argparse.Namespace) -> int:
    from ..bench.zoo_report import render_table, zoo_rows

    rows = zoo_rows(args.names or None, quiet=args.quiet)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    print("Model zoo complexity: params and MACs counted the paper's way (thop convention, input 1x3x1024x2048;")
    print("'FLOPs' in the paper are MACs) and honestly (all parameters; all convs, linears and attention matmuls).\n")
    print(render_table(rows))
    return 0


@command("bench", "params, MACs, latency, throughput and memory of presets or checkpoints")
def _configure_bench(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("models", nargs="+", help="presets or weights files (ratios are to the first)")
    p.add_argument("--image", help="image the codecs are timed on (default: the bundled Kodak sample, 768x512)")
    p.add_argument("--size", help="WIDTHxHEIGHT to crop or mirror-extend the image to (default: the image's own size)")
    p.add_argument("--no-classical", action="store_true", help="leave out the classical codecs' rows")
    p.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    p.add_argument("--train-batch", type=int, default=8, help="crops per timed training step")
    p.add_argument("--train-size", type=int, default=256, help="crop size of the timed training steps")
    p.add_argument("--train-steps", type=int, default=2, help="timed training steps (0 skips throughput)")
    p.add_argument("--threads", type=int, help="torch threads (default: all)")
    p.add_argument("--json", help="also write the report as JSON")
    p.add_argument("--markdown", help="also write the tables as markdown")
    p.set_defaults(func=bench)


def bench(args: argparse.Namespace) -> int:
    width, _, height = (args.size or "0x0").partition("x")
    if not (width.isdigit() and height.isdigit()) or (args.size and not (int(width) and int(height))):
        raise KdicError(f"--size takes WIDTHxHEIGHT, e.g. 768x512; got {args.size!r}")
    for path in (args.json, args.markdown):
        if path:
            checked_folder(path)
    from ..bench.report import bench as run_bench
    from ..bench.report import render_markdown, sized_image
    from ..codec import read_image
    from ..data import sample_image_path
    from ..fileio import atomic_write_bytes

    image = read_image(args.image or sample_image_path())
    image = image if image.ndim == 3 else image[..., None].repeat(3, axis=2)
    if args.size:
        image = sized_image(image, int(width), int(height))
    report = run_bench(
        args.models,
        image,
        args.runs,
        args.train_batch,
        args.train_size,
        args.train_steps,
        args.threads,
    )
    if not args.no_classical:
        from ..eval.baselines import timed_codecs

        report["classical"] = timed_codecs(image, report["models"][0]["bpp"], max(args.runs, 1))
    markdown = render_markdown(report)
    print(markdown)
    if args.json:
        write_json(report, args.json)
    if args.markdown:
        atomic_write_bytes(args.markdown, (markdown + "\n").encode())
    return 0


@command("info", "show the header of a .kdic file or the metadata of a weights file")
def _configure_info(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("file", help="a .kdic file or a weights file")
    p.add_argument("--json", action="store_true", help="print the full header or metadata block as JSON")
    p.set_defaults(func=info)


def info(args: argparse.Namespace) -> int:
    from ..checkpoint import read_metadata
    from ..codec.bitstream import MAGIC, describe

    path = Path(args.file)
    if not path.is_file():
        raise KdicError(f"{path}: no such file")
    with open(path, "rb") as f:
        is_bitstream = f.read(len(MAGIC)) == MAGIC
    if is_bitstream:
        try:
            described = {"file": str(path), **describe(path.read_bytes())}
        except KdicError as exc:
            raise KdicError(f"{path}: {exc}") from None
        print(
            json.dumps(described, indent=2)
            if args.json
            else "\n".join(f"{k + ':':16s}{v}" for k, v in described.items())
        )
        return 0
    metadata = read_metadata(path)  # validated: every field below exists and has its type
    if args.json:
        print(json.dumps(metadata, indent=2))
        return 0
    config = metadata["config"]
    print(f"file:          {args.file}")
    print(f"model:         {config['name']} ({config['description']})")
    vr = config.get("variable_rate")
    if vr is not None:
        lmbdas = vr["lmbdas"]
        print(
            f"lambda:        {lmbdas[0]:g} to {lmbdas[-1]:g} (variable rate: {vr['method']}, "
            f"{len(lmbdas)} anchors {', '.join(f'{v:g}' for v in lmbdas)})"
        )
    else:
        print(f"lambda:        {metadata['lmbda']}")
    print(f"kdic version:  {metadata['kdic_version']}")
    return 0


def _refuse_existing(output: str, force: bool) -> Path:
    path = checked_folder(output)
    if path.exists() and not force:
        raise KdicError(f"{path} exists; use --force to overwrite")
    return path


@command("export", "rewrite a weights file (e.g. as float16 for shipping)")
def _configure_export(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("weights", help="weights file written by kdic")
    p.add_argument("-o", "--output", required=True, help="weights file to write")
    p.add_argument("--half", action="store_true", help="store floating-point tensors as float16")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_quiet(p, "print nothing but errors")
    p.set_defaults(func=export)


def export(args: argparse.Namespace) -> int:
    output = _refuse_existing(args.output, args.force)
    import torch

    from ..checkpoint import load, read_metadata, save

    metadata = read_metadata(args.weights)
    model = load(args.weights)
    save(
        model,
        output,
        lmbda=metadata.get("lmbda"),
        extra={**metadata.get("extra", {}), "exported_from": Path(args.weights).name},
        dtype=torch.float16 if args.half else None,
    )
    if not args.quiet:
        print(f"{args.weights} -> {output} ({output.stat().st_size / 1e6:.2f} MB{', float16' if args.half else ''})")
    return 0


@command("import", "convert another project's checkpoint (CompressAI, LIC_TCM) into kdic weights")
def _configure_import(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from ..importers import SOURCES  # torch-free; tests keep it equal to the registry

    p.add_argument("source", help="checkpoint: .pth/.pth.tar/.pt (read with weights_only=True) or .safetensors")
    p.add_argument("-o", "--output", required=True, help="kdic weights file to write")
    p.add_argument(
        "--from",
        dest="source_kind",
        required=True,
        choices=SOURCES,
        metavar="SOURCE",
        help="what the checkpoint holds: " + ", ".join(SOURCES),
    )
    p.add_argument("--partial", action="store_true", help="the checkpoint holds only the transforms (g_a.*, g_s.*)")
    p.add_argument("--lmbda", type=float, help="the lambda it was trained at (recorded; distillation defaults to it)")
    p.add_argument("--name", help="model name (default: the source and its widths)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_quiet(p, "print nothing but errors")
    p.set_defaults(func=import_)


def import_(args: argparse.Namespace) -> int:
    output = _refuse_existing(args.output, args.force)
    from ..checkpoint import save
    from ..importers import import_checkpoint

    model = import_checkpoint(args.source, args.source_kind, partial=args.partial, name=args.name)
    save(
        model,
        output,
        lmbda=args.lmbda,
        extra={"imported_from": args.source_kind, "source_file": Path(args.source).name, "partial": args.partial},
    )
    if not args.quiet:
        print(
            f"{args.source} ({args.source_kind}) -> {output}: model {model.config.name!r}, "
            f"{model.num_parameters():,} parameters{', transforms only' if args.partial else ''}"
        )
    return 0


@command(
    "datasets",
    "list and fetch the standard data sets (Kodak, CLIC, Tecnick, DIV2K, Flickr2W) into a cache, "
    "verified by SHA-256, resumable",
)
def _configure_datasets(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    from ..datasets import DATASETS

    p.add_argument("action", choices=["list", "fetch", "path"], help="list the sets; fetch one; print its folder")
    p.add_argument(
        "name",
        nargs="?",
        choices=list(DATASETS),
        metavar="NAME",
        help="the set to fetch or locate: " + ", ".join(DATASETS),
    )
    p.add_argument("--cache", type=Path, help="cache folder (default: $KDIC_DATA or ~/.cache/kdic/datasets)")
    add_quiet(p)
    p.set_defaults(func=datasets)


def datasets(args: argparse.Namespace) -> int:
    from ..datasets import DATASETS, dataset_folder, default_cache, fetch_dataset

    cache = args.cache or default_cache()
    if args.action == "list":
        for name, source in DATASETS.items():
            where = dataset_folder(source, cache)
            state = f"in {where}" if where else ("manual download" if source.manual else "not fetched")
            print(f"{name:28s} {source.description}\n{'':28s} licence: {source.licence}\n{'':28s} {state}")
        return 0
    if args.name is None:
        raise KdicError(f"'kdic datasets {args.action}' needs a set name: {', '.join(DATASETS)}")
    source = DATASETS[args.name]
    if args.action == "path":
        where = dataset_folder(source, cache)
        if where is None:
            raise KdicError(f"{args.name} is not in {cache}; run 'kdic datasets fetch {args.name}'")
        print(where)
        return 0
    if not args.quiet:
        print(f"{source.name}: {source.licence}", file=sys.stderr)
        if any(f.sha256 is None for f in source.files):
            print(
                f"kdic: notice: {source.name} has no published checksum; the SHA-256 of this download is recorded "
                "in its manifest",
                file=sys.stderr,
            )
    print(fetch_dataset(source, cache, args.quiet))
    return 0


@command("demo", "the main job: code a sample with the shipped teacher and student, then a short SMoDi distillation")
def _configure_demo(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    p.add_argument("--distill-steps", type=int, default=240, help="steps of the distillation demo")
    add_quiet(p)
    p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    run_demo(args.distill_steps, args.quiet)
    return 0
