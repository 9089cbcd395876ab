"""``kdic`` command line. Sub-commands are thin wrappers over the library.

Every user error ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tqdm import tqdm

from . import __version__
from .errors import KdicError

KDIC_SUFFIX = ".kdic"


def _encoder_model(args: argparse.Namespace):
    """Model to encode with: ``--weights FILE``, else the shipped ``--model`` role/preset at ``--quality``."""
    from .checkpoint import load
    from .data import DEFAULT_QUALITY, DEFAULT_ROLE, bundled_weights

    if args.weights:
        if args.model or args.quality:
            raise KdicError("--model and --quality pick shipped weights; they cannot be combined with --weights")
        return load(args.weights)
    return load(bundled_weights(args.model or DEFAULT_ROLE, args.quality or DEFAULT_QUALITY))


def _decoder_model(weights: str | None, header):
    """Model that decodes ``header``: ``--weights FILE``, else the shipped weights whose digest it names."""
    from .checkpoint import load
    from .data import weights_for_digest

    return load(weights if weights else weights_for_digest(header.model_id, header.weights_digest))


def _plan(inputs: Sequence[str], output: str | None, suffixes: Iterable[str], out_suffix: str,
          force: bool, beside_suffix: str | None = None) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one file to one file, files/folders into an existing folder, or (no
    output given) each output beside its input, named with ``beside_suffix`` (default ``out_suffix``).

    What would lose data is refused here, before anything is coded: two inputs sharing an output,
    an output that is an input (even with ``force``), and an existing output without ``force``.
    """
    suffixes = tuple(suffixes)
    sources: dict[Path, Path] = {}  # resolved -> as named: an input named twice is coded once
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
            if not found:
                raise KdicError(f"{path}: no input files ({', '.join(suffixes)}) in this folder")
        elif path.is_file():
            found = [path]
        else:
            raise KdicError(f"{path}: no such file or folder")
        for src in found:
            sources.setdefault(src.resolve(), src)
    many = len(inputs) > 1 or Path(inputs[0]).is_dir()
    if output is None:
        pairs = [(src, src.with_suffix(beside_suffix or out_suffix)) for src in sources.values()]
    elif many or Path(output).is_dir():
        target = Path(output)
        if not target.is_dir():
            raise KdicError(f"output folder {target} does not exist")
        pairs = [(src, target / (src.stem + out_suffix)) for src in sources.values()]
    else:
        target = Path(output)
        if not target.parent.is_dir():
            raise KdicError(f"output folder {target.parent} does not exist")
        pairs = [(next(iter(sources.values())), target)]

    def identity(path: Path) -> tuple[int, int]:
        stat = os.stat(path)
        return stat.st_dev, stat.st_ino

    input_files = {identity(src): src for src in sources.values()}  # hard links and symlinks included
    writers: dict[Path, Path] = {}
    for src, dst in pairs:
        other = writers.setdefault(dst.resolve(), src)
        if other is not src:
            raise KdicError(f"{other} and {src} would both be written to {dst}; rename one or code them separately")
        if not dst.exists():
            continue
        if identity(dst) in input_files:
            raise KdicError(f"output {dst} would overwrite the input {input_files[identity(dst)]} "
                            "(refused even with --force)")
        if not force:
            raise KdicError(f"{dst} exists; use --force to overwrite")
    return pairs


def _code_each(pairs: list[tuple[Path, Path]], code: Callable[[Path, Path], None], desc: str, unit: str,
               quiet: bool) -> int:
    """Run ``code(src, dst)`` on every pair. A single input fails like any error; of several, a failing
    one is reported on one line and skipped, and a closing count and exit status 2 say so."""
    failed = 0
    for src, dst in tqdm(pairs, desc=desc, disable=quiet or len(pairs) == 1, unit=unit):
        try:
            code(src, dst)
        except KdicError as exc:
            if len(pairs) == 1:
                raise
            failed += 1
            tqdm.write(f"kdic: error: {exc}", file=sys.stderr)
    if failed:
        print(f"kdic: {failed} of {len(pairs)} inputs failed", file=sys.stderr)
        return 2
    return 0


def _create(dst: Path, write: Callable[[], None]) -> None:
    """Run ``write()``, reporting an OS failure (full disk, no permission) as one line about ``dst``."""
    try:
        write()
    except OSError as exc:
        raise KdicError(f"{dst}: cannot write ({exc.strerror or exc})") from None


def _print_timings(report) -> None:
    total = sum(report.timings.values())
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in report.timings.items())
    tqdm.write(f"    time {total:.3f} s: {parts}; {report.symbols} symbols")


def _rate_choice(model, args: argparse.Namespace) -> Callable:
    """``code(image) -> (bytes, reconstruction, report, note)`` at the rate ``--lmbda``/``--target-*`` ask
    for: a variable-rate model needs one of them, a fixed-rate one codes at its own lambda only.

    Encoding does only what the file needs: the reconstruction (for the PSNR line) unless ``--quiet``,
    the likelihood pass (for the estimate) only with ``--verbose``."""
    from functools import partial

    from .codec import encode_image
    from .codec.target import TARGETS, code_at_target

    encode = partial(encode_image, model, estimate=args.verbose and not args.quiet, reconstruct=not args.quiet)
    targets = {"bpp": args.target_bpp, "psnr": args.target_psnr}
    asked = [f"--target-{k}" for k, v in targets.items() if v is not None] + (["--lmbda"] if args.lmbda is not None else [])
    if len(asked) > 1:
        raise KdicError(f"{' and '.join(asked)} each set the rate; pass one")
    if not model.variable_rate:
        if asked:
            raise KdicError(f"{asked[0]} needs variable-rate weights; {model.config.name} is fixed-rate "
                            f"(lambda {model.lmbda}): pick --quality or other --weights")
        return lambda image: (*encode(image), "")
    low, high = model.rate.range
    if not asked:
        raise KdicError(f"variable-rate weights: pass --lmbda (from {low:g} to {high:g}), --target-bpp or --target-psnr")
    if args.lmbda is not None:
        model.check_lmbda(args.lmbda)  # refused once, before any image is read
        return lambda image: (*encode(image, lmbda=args.lmbda), f", lambda {args.lmbda:g}")
    metric, target = next((k, v) for k, v in targets.items() if v is not None)

    def code(image):
        r = code_at_target(model, image, metric, target, args.max_passes, reconstruct=not args.quiet)
        unit = TARGETS[metric].unit
        verdict = "" if r.met else f", cannot reach {target:g} {unit} within lambda {low:g} to {high:g}"
        return (r.data, r.reconstruction, r.report,
                f", lambda {r.lmbda:.5g} ({r.passes} coding passes for {target:g} {unit}: {r.value:.4f}{verdict})")

    return code


def _set_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        if args.threads < 1:
            raise KdicError("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)


def _cmd_compress(args: argparse.Namespace) -> int:
    _set_threads(args)
    import numpy as np

    from .codec import IMAGE_SUFFIXES, read_image
    from .fileio import atomic_write_bytes

    pairs = _plan(args.inputs, args.output, IMAGE_SUFFIXES, KDIC_SUFFIX, args.force)
    model = _encoder_model(args)
    code = _rate_choice(model, args)

    def compress(src: Path, dst: Path) -> None:
        notes: list[str] = []
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = read_image(src, notes=notes)  # its errors name the file
        for warning in caught:
            tqdm.write(f"kdic: warning: {warning.message}", file=sys.stderr)
        if args.verbose and not args.quiet:
            for note in notes:
                tqdm.write(f"kdic: note: {src.name}: {note}", file=sys.stderr)
        read = time.perf_counter() - started
        try:
            data, reconstruction, report, rate = code(image)
        except KdicError as exc:
            raise KdicError(f"{src}: {exc}") from None
        written = time.perf_counter()
        _create(dst, lambda: atomic_write_bytes(dst, data, exclusive=not args.force))
        report.timings.update({"reading the image": read, "writing the file": time.perf_counter() - written})
        if not args.quiet:
            mse = np.mean((reconstruction.astype(np.float64) - image.astype(np.float64)) ** 2)
            psnr = 10 * np.log10(255**2 / mse) if mse > 0 else float("inf")
            estimate = report.estimated_bits_per_pixel
            tqdm.write(f"{src.name} -> {dst}: {report.num_bytes} bytes, {report.bits_per_pixel:.4f} bpp"
                       f"{'' if estimate is None else f' (estimate {estimate:.4f})'}, PSNR {psnr:.2f} dB{rate}")
            if args.verbose:
                _print_timings(report)

    return _code_each(pairs, compress, "compressing", "image", args.quiet)


def _cmd_decompress(args: argparse.Namespace) -> int:
    _set_threads(args)
    from .codec import decode_bytes, unpack, write_png

    pairs = _plan(args.inputs, args.output, (KDIC_SUFFIX,), ".png", args.force, ".decoded.png")
    models: dict[tuple[str, bytes], object] = {}

    def decompress(src: Path, dst: Path) -> None:
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise KdicError(f"{src}: cannot read ({exc.strerror or exc})") from None
        try:
            header, _ = unpack(data)
            key = (header.model_id, header.weights_digest)
            if key not in models:
                models[key] = _decoder_model(args.weights, header)
            image, report = decode_bytes(models[key], data)
        except KdicError as exc:
            raise KdicError(f"{src}: {exc}") from None
        _create(dst, lambda: write_png(image, dst, exclusive=not args.force))
        if not args.quiet:
            tqdm.write(f"{src.name} -> {dst}: {report.width}x{report.height}, {report.bits_per_pixel:.4f} bpp")
            if args.verbose:
                _print_timings(report)

    return _code_each(pairs, decompress, "decompressing", "file", args.quiet)


def _cmd_models(args: argparse.Namespace) -> int:
    from .bench.zoo_report import render_table, zoo_rows

    rows = zoo_rows(args.names or None, quiet=args.quiet)
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
    else:
        print("Model zoo complexity: params and MACs counted the paper's way (thop convention, input 1x3x1024x2048;")
        print("'FLOPs' in the paper are MACs) and honestly (all parameters; all convs, linears and attention matmuls).\n")
        print(render_table(rows))
    return 0


def _cmd_datasets(args: argparse.Namespace) -> int:
    from .datasets import DATASETS, dataset_folder, default_cache, fetch_dataset

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
            print(f"kdic: notice: {source.name} has no published checksum; the SHA-256 of this download is recorded "
                  "in its manifest", file=sys.stderr)
    print(fetch_dataset(source, cache, args.quiet))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import read_metadata
    from .codec import unpack
    from .codec.bitstream import MAGIC

    path = Path(args.file)
    if not path.is_file():
        raise KdicError(f"{path}: no such file")
    with open(path, "rb") as f:
        is_bitstream = f.read(len(MAGIC)) == MAGIC
    if is_bitstream:
        data = path.read_bytes()
        try:
            header, streams = unpack(data)
        except KdicError as exc:
            raise KdicError(f"{path}: {exc}") from None
        info = {"file": str(path), "format_version": header.version, "bytes": len(data), "model": header.model_id,
                "weights_digest": header.weights_digest.hex(), "width": header.width, "height": header.height,
                "channels": header.channels, "entropy_tile": header.entropy_tile,
                "transform_tile": header.transform_tile, "lmbda": header.lmbda or None,
                "content_digest": header.content_digest.hex(),
                "bits_per_pixel": 8 * len(data) / (header.width * header.height),
                "stream_bytes": [len(s) for s in streams]}
        print(json.dumps(info, indent=2) if args.json else "\n".join(f"{k + ':':16s}{v}" for k, v in info.items()))
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
        print(f"lambda:        {lmbdas[0]:g} to {lmbdas[-1]:g} (variable rate: {vr['method']}, "
              f"{len(lmbdas)} anchors {', '.join(f'{v:g}' for v in lmbdas)})")
    else:
        print(f"lambda:        {metadata['lmbda']}")
    print(f"kdic version:  {metadata['kdic_version']}")
    return 0


def _model_config(spec: str):
    """A preset name, or a JSON file holding a model config (``kdic.models.to_dict`` form)."""
    from .models import config_from_dict, get_config

    from .fileio import read_json

    if Path(spec).suffix == ".json":
        return config_from_dict(read_json(spec, "model config file", KdicError))
    return get_config(spec)


def _train_config(args: argparse.Namespace, lmbda_range: tuple[float, float] | None = None):
    from .train.engine import TrainConfig

    return TrainConfig(lmbda=args.lmbda, steps=args.steps, batch_size=args.batch_size, crop=args.crop, lr=args.lr,
                       decay_at=tuple(args.decay_at), seed=args.seed, checkpoint_every=args.checkpoint_every,
                       val_every=args.val_every, lmbda_range=lmbda_range, precision=args.precision,
                       accumulate=args.accumulate)


def _runtime(args: argparse.Namespace):
    from .train.engine import Runtime

    return Runtime(workers=args.workers, compile=args.compile, checkpoint_minutes=args.checkpoint_minutes,
                   max_minutes=args.max_minutes)


def _checked_recipe(args: argparse.Namespace, command: str, lmbda: float | None = None, check_lmbda: bool = True):
    """The run's recipe (its values are already the parser's defaults), its command and lambda checked."""
    if args.recipe is None:
        return None
    from .train.recipes import load_recipe

    recipe = getattr(args, "loaded_recipe", None) or load_recipe(args.recipe)  # read once, by main()
    if recipe.command != command:
        raise KdicError(f"recipe {recipe.name} is for 'kdic {recipe.command}', not 'kdic {command}'")
    if check_lmbda:
        recipe.check_lmbda(lmbda)
    return recipe


def _print_plan(command: str, config, train_config, phases, args: argparse.Namespace, recipe) -> int:
    from .train.recipes import run_plan

    print(json.dumps(run_plan(command, config, train_config, phases, args.device, recipe, args.throughput), indent=2))
    return 0


def _report_stop(summary: dict, run_dir: str) -> bool:
    """Say so when --max-minutes stopped the run (checkpointed); True if it did."""
    if summary.get("complete", True):
        return False
    print(f"kdic: stopped at step {summary['global_step']} (--max-minutes); continue with the same command and "
          f"--resume (run folder {run_dir})", file=sys.stderr)
    return True


def _cmd_train(args: argparse.Namespace) -> int:
    from .train.run import train

    _checked_recipe(args, "train", check_lmbda=False)

    if args.model is None and args.init is None:
        raise KdicError("pass --model PRESET (or a config JSON), or --init WEIGHTS to start from a trained model")
    if args.model is not None:
        config = _model_config(args.model)
    else:
        from .checkpoint import read_config

        config = read_config(args.init)
    if args.variable_rate or args.lmbdas:
        from .models import with_variable_rate

        config = with_variable_rate(config, tuple(args.lmbdas) if args.lmbdas else None)
    if args.padding is not None:
        from dataclasses import replace

        config = replace(config, padding=args.padding)
    if args.lmbda is None and config.variable_rate is None:
        raise KdicError("pass --lmbda (or --variable-rate to train one model for a range of lambdas)")
    vr = config.variable_rate
    recipe = _checked_recipe(args, "train", args.lmbda)
    if args.dry_run:
        return _print_plan("train", config, _train_config(args, vr.range if vr else None),
                           [("train", args.steps)], args, recipe)
    summary = train(config, _train_config(args, vr.range if vr else None), args.data, args.run_dir, args.val,
                    args.val_images, args.resume, args.quiet, args.init, args.device, _runtime(args))
    if _report_stop(summary, args.run_dir):
        return 0
    if not args.quiet and summary.get("validation"):  # only rank 0 validates
        v = summary["validation"]
        points = "; ".join(f"lambda {k[4:]}: {v[k]:.4f} bpp, {v['psnr' + k[3:]]:.2f} dB" for k in v if k.startswith("bpp@"))
        print(f"done: {summary['global_step']} steps; validation bpp {v['bpp']:.4f}, PSNR {v['psnr']:.2f} dB"
              f"{f' ({points})' if points else ''}; weights in {Path(args.run_dir) / 'model.safetensors'}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    from .checkpoint import read_config, read_metadata
    from .distill import derive_student, distill, load_strategy
    from .models import TEACHER_OF, get_config

    _checked_recipe(args, "distill", check_lmbda=False)
    strategy = load_strategy(args.strategy)
    if args.final_fraction is not None:
        strategy = strategy.with_final_fraction(args.final_fraction)
    if args.teacher_init and not strategy.uses_teacher:
        raise KdicError(f"--teacher-init: strategy {strategy.name!r} trains without a teacher (try prune-finetune)")
    teacher_meta = read_metadata(args.teacher)
    teacher_config = read_config(args.teacher)
    lmbda = args.lmbda if args.lmbda is not None else teacher_meta.get("lmbda")
    vr = teacher_config.variable_rate
    if lmbda is None and vr is None:
        raise KdicError(f"{args.teacher} records no lambda; pass --lmbda")
    if args.student == "derive" or (args.student is None and teacher_config.name not in TEACHER_OF.values()):
        student = derive_student(teacher_config, f"{teacher_config.name}-student", args.stage1_channels,
                                 width_scale=args.width_scale)
    elif args.student is None:
        student = get_config(next(s for s, t in TEACHER_OF.items() if t == teacher_config.name))
    else:
        student = _model_config(args.student)
    args.lmbda = lmbda
    recipe = _checked_recipe(args, "distill", lmbda)
    if args.dry_run:
        from .models import LearnedImageCodec

        built = LearnedImageCodec(student)
        expanded = strategy.expand(len(built.g_a.stages), len(built.g_s.stages), student.family)
        return _print_plan("distill", student, _train_config(args, vr.range if vr else None),
                           [(p.name, n) for p, n in zip(expanded.phases, expanded.steps(args.steps))], args, recipe)
    summary = distill(args.teacher, student, strategy, _train_config(args, vr.range if vr else None), args.data,
                      args.run_dir, args.val, args.val_images, args.teacher_init, args.resume, args.quiet, args.device,
                      _runtime(args))
    if _report_stop(summary, args.run_dir):
        return 0
    if not args.quiet and _rank() == 0:
        v = summary.get("validation")
        rd = f"; validation bpp {v['bpp']:.4f}, PSNR {v['psnr']:.2f} dB" if v else ""
        print(f"done: {student.name} distilled from {teacher_config.name} with {strategy.name} in "
              f"{summary['global_step']} steps{rd}; weights in {Path(args.run_dir) / 'model.safetensors'}")
    return 0


def add_training_args(p: argparse.ArgumentParser, lmbda_required: bool = True) -> None:
    p.add_argument("--lmbda", type=float, required=lmbda_required,
                   help="rate-distortion trade-off: loss = bpp + lmbda*255^2*MSE")
    p.add_argument("--data", required=True, help="training images: a folder (images and uncompressed .tar shards, "
                                                 "searched recursively), a .txt/.lst file list, or one .tar shard; "
                                                 "streamed, never loaded whole")
    p.add_argument("--run-dir", required=True, help="run folder (config, logs, checkpoints, exported weights)")
    p.add_argument("--val", help="validation image folder, e.g. Kodak")
    p.add_argument("--val-images", type=int, help="use only the first N validation images")
    p.add_argument("--steps", type=int, default=2000, help="total optimizer steps")
    p.add_argument("--batch-size", type=int, default=8, help="crops per step (per process under torchrun)")
    p.add_argument("--crop", type=int, default=128, help="square crop size, a multiple of 64")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--decay-at", type=float, nargs="+", default=[0.9], help="fractions of each phase where lr *= 0.1")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between resumable checkpoints")
    p.add_argument("--val-every", type=int, default=0, help="steps between validations (0: at the end only)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from .train.distributed import DEVICES
    from .train.engine import PRECISIONS

    p.add_argument("--device", default="auto", metavar="|".join(DEVICES),
                   help="auto: CUDA when available (with or without torchrun), else the CPU (default: auto)")
    p.add_argument("--precision", choices=list(PRECISIONS), default="fp32",
                   help="autocast precision of the transforms; rates, likelihoods and the loss stay float32 "
                        "(fp16 adds a gradient scaler; default: fp32)")
    p.add_argument("--accumulate", type=int, default=1, help="micro-batches per optimizer step (default: 1)")
    p.add_argument("--workers", type=int, default=0,
                   help="DataLoader processes decoding and cropping images (0: in the training process; default: 0)")
    p.add_argument("--compile", action="store_true", help="torch.compile the trained module")
    p.add_argument("--checkpoint-minutes", type=float, default=0.0,
                   help="also checkpoint every N minutes of wall time (0: only every --checkpoint-every steps)")
    p.add_argument("--max-minutes", type=float, default=0.0,
                   help="checkpoint and stop after N minutes (inside a scheduler's wall time); resume later")
    from .train.recipes import available_recipes

    p.add_argument("--recipe", help=f"take this recipe's settings as defaults ({', '.join(available_recipes())}, "
                                    "or a recipe JSON); options given explicitly win")
    p.add_argument("--dry-run", action="store_true",
                   help="print the resolved run, its steps and device-hours (timing two steps here), then stop")
    p.add_argument("--throughput", type=float, metavar="SAMPLES_PER_S",
                   help="with --dry-run: a measured training throughput (kdic bench) instead of timing here")


def _write_json(data: dict, path: str | Path) -> None:
    from .fileio import atomic_write_bytes

    path = Path(path)
    if not path.parent.is_dir():
        raise KdicError(f"output folder {path.parent} does not exist")
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())


def _cmd_eval(args: argparse.Namespace) -> int:
    from .eval.rd import DEFAULT_RATES, evaluate_weights
    from .train.data import load_validation

    images = load_validation(args.data, args.limit)
    bitstreams = Path(args.bitstreams) if args.bitstreams else None
    if bitstreams is not None and not bitstreams.is_dir():
        raise KdicError(f"bitstream folder {bitstreams} does not exist")
    if args.lmbdas and args.rates:
        raise KdicError("--lmbdas and --rates both pick the rate points of variable-rate weights; pass one")
    rates = tuple(args.lmbdas) if args.lmbdas else args.rates or DEFAULT_RATES
    result = evaluate_weights(args.weights, images, args.name, Path(args.data).name, bitstreams, args.quiet, rates)
    _write_json(result, args.output)
    if not args.quiet:
        r = result["results"]
        for i, bpp in enumerate(r["bpp"]):
            ms = r["ms-ssim-rgb"][i]
            lmbda = result["meta"]["lmbda"][i]
            print(f"{result['meta']['weights'][i]} (lambda {'-' if lmbda is None else f'{lmbda:.5g}'}): {bpp:.4f} bpp (estimate {r['estimated_bpp'][i]:.4f}), "
                  f"PSNR {r['psnr-rgb'][i]:.2f} dB, MS-SSIM {'-' if ms is None else f'{ms:.4f}'}, "
                  f"encode {r['encoding_time'][i]:.3f} s, decode {r['decoding_time'][i]:.3f} s")
        print(f"results written to {args.output}")
    return 0


def _cmd_bdrate(args: argparse.Namespace) -> int:
    from .eval.bdrate import bd_quality, bd_rate, load_curve

    anchor = load_curve(args.anchor, args.metric)
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for spec in args.tests:
            test = load_curve(spec, args.metric)
            rows.append({"test": test.name, "anchor": anchor.name, "metric": args.metric, "method": args.method,
                         "bd_rate_pct": bd_rate(test, anchor, args.method),
                         "bd_quality": bd_quality(test, anchor, args.method)})
    for warning in caught:
        print(f"kdic: warning: {warning.message}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        unit = "dB" if args.metric == "psnr-rgb" else ""
        for r in rows:
            print(f"{r['test']} vs {r['anchor']} ({r['method']}, {r['metric']}): BD-rate {r['bd_rate_pct']:+.2f} %, "
                  f"BD-{args.metric} {r['bd_quality']:+.3f} {unit}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .eval.bdrate import load_curve
    from .eval.plot import plot_curves

    if not Path(args.output).parent.is_dir():
        raise KdicError(f"output folder {Path(args.output).parent} does not exist")
    if args.max_bpp is not None and args.max_bpp <= 0:
        raise KdicError(f"--max-bpp must be positive, got {args.max_bpp}")
    curves = [load_curve(spec, args.metric) for spec in args.curves]
    anchors = [load_curve(spec, args.metric) for spec in args.anchors]
    for path in plot_curves(curves, args.output, args.title, anchors, args.max_bpp):
        print(path)
    return 0


def _cmd_baselines(args: argparse.Namespace) -> int:
    from .eval.baselines import available_codecs, evaluate_codec
    from .train.data import load_validation

    output = Path(args.output)
    if not output.is_dir():
        raise KdicError(f"output folder {output} does not exist")
    images = load_validation(args.data, args.limit)
    codecs, notices = available_codecs()
    for notice in notices:
        print(f"kdic: notice: {notice}", file=sys.stderr)
    for codec in codecs:
        if args.codecs and codec.name not in args.codecs:
            continue
        result = evaluate_codec(codec, images, Path(args.data).name, args.quiet)
        _write_json(result, output / f"{codec.name}.json")
        if not args.quiet:
            print(f"{codec.name}: {len(result['results']['bpp'])} points, "
                  f"{min(result['results']['bpp']):.3f}-{max(result['results']['bpp']):.3f} bpp -> {output / codec.name}.json")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench.report import bench, render_markdown

    width, _, height = args.size.partition("x")
    report = bench(args.models, int(width), int(height), args.runs, args.train_batch, args.train_size,
                   args.train_steps, args.threads)
    markdown = render_markdown(report)
    print(markdown)
    if args.json:
        _write_json(report, args.json)
    if args.markdown:
        from .fileio import atomic_write_bytes

        atomic_write_bytes(args.markdown, (markdown + "\n").encode())
    return 0


def _cmd_energy(args: argparse.Namespace) -> int:
    from .checkpoint import load
    from .eval.energy import channel_energy, energy_report, plot_energy
    from .train.data import load_validation

    if args.names and len(args.names) != len(args.weights):
        raise KdicError(f"--names needs one name per weights file ({len(args.weights)})")
    if args.plot and not Path(args.plot).parent.is_dir():
        raise KdicError(f"output folder {Path(args.plot).parent} does not exist")
    images = load_validation(args.data, args.limit)
    reports = []
    for i, weights in enumerate(args.weights):
        model = load(weights)
        name = args.names[i] if args.names else model.config.name
        reports.append(energy_report(name, str(weights), channel_energy(model, images, args.quiet)))
    _write_json({"dataset": Path(args.data).name, "images": len(images), "models": reports}, args.output)
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


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    run_demo(args.quality, args.distill_steps, args.quiet)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    import torch

    from .checkpoint import load, read_metadata, save

    output = Path(args.output)
    if output.exists() and not args.force:
        raise KdicError(f"{output} exists; use --force to overwrite")
    metadata = read_metadata(args.weights)
    model = load(args.weights)
    save(model, output, lmbda=metadata.get("lmbda"), extra={**metadata.get("extra", {}), "exported_from": Path(args.weights).name},
         dtype=torch.float16 if args.half else None)
    if not args.quiet:
        print(f"{args.weights} -> {output} ({output.stat().st_size / 1e6:.2f} MB{', float16' if args.half else ''})")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from .checkpoint import save
    from .importers import import_checkpoint

    output = Path(args.output)
    if output.exists() and not args.force:
        raise KdicError(f"{output} exists; use --force to overwrite")
    model = import_checkpoint(args.source, args.source_kind, partial=args.partial, name=args.name)
    save(model, output, lmbda=args.lmbda, extra={"imported_from": args.source_kind, "source_file": Path(args.source).name,
                                                 "partial": args.partial})
    if not args.quiet:
        print(f"{args.source} ({args.source_kind}) -> {output}: model {model.config.name!r}, "
              f"{model.num_parameters():,} parameters{', transforms only' if args.partial else ''}")
    return 0


def _recipe_in(argv: Sequence[str]):
    """The recipe named by ``--recipe`` in ``argv`` (loaded before parsing: its values become defaults)."""
    for i, arg in enumerate(argv):
        if arg == "--recipe" and i + 1 < len(argv) or arg.startswith("--recipe="):
            from .train.recipes import load_recipe

            return load_recipe(argv[i + 1] if arg == "--recipe" else arg.split("=", 1)[1])
    return None


def _apply_recipe(commands: dict[str, argparse.ArgumentParser], recipe) -> None:
    parser = commands[recipe.command]
    known = {action.dest for action in parser._actions}
    unknown = sorted(set(recipe.args) - known)
    if unknown:
        raise KdicError(f"recipe {recipe.name}: {', '.join(unknown)} are not options of 'kdic {recipe.command}'")
    parser.set_defaults(**recipe.args, loaded_recipe=recipe)


def build_parser(recipe=None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdic", description="Learned image compression and its knowledge distillation.")
    parser.add_argument("--version", action="version", version=f"kdic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the model zoo with params and MACs beside the paper's figures")
    models.add_argument("names", nargs="*", help="presets to count (default: all)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--quiet", action="store_true", help="no progress bar")
    models.set_defaults(func=_cmd_models)

    def add_codec_args(p: argparse.ArgumentParser, verb: str) -> None:
        p.add_argument("inputs", nargs="+", metavar="INPUT", help=f"file(s) or folder(s) to {verb}")
        p.add_argument("-o", "--output", help="output file, or an existing folder (default: beside each input)")
        p.add_argument("--weights", help="weights file (.safetensors) written by kdic")
        p.add_argument("--force", action="store_true", help="overwrite existing outputs")
        p.add_argument("--verbose", action="store_true",
                       help="print the time split (transform vs entropy coding) and what was done to each input "
                            "(EXIF orientation, colour profile)")
        p.add_argument("--quiet", action="store_true", help="print nothing but errors")
        p.add_argument("--threads", type=int, metavar="N",
                       help="torch threads for the transforms and entropy parameters (default: all cores); files "
                            "of format 3 decode to the same latent whatever N, and the synthesis stays on one "
                            "thread, so pixels are the same on one machine")

    compress = sub.add_parser("compress", help="images (PNG, JPEG, ...) to .kdic bitstreams")
    add_codec_args(compress, "compress")
    compress.add_argument("--model", help="shipped weights to use: 'student' (default, the SMoDi-distilled "
                                           "kdic-tiny), 'teacher' (s2c-hybrid-tiny), or a preset name")
    compress.add_argument("--quality", type=int, choices=[1, 2, 3, 4],
                          help="rate point of the shipped weights: lambda 0.0035, 0.0067, 0.013 (default), 0.025")
    compress.add_argument("--lmbda", type=float, help="rate point of variable-rate --weights: any lambda in their "
                                                      "range (kdic info shows it)")
    compress.add_argument("--target-bpp", type=float, help="variable-rate --weights: per image, the lambda whose file "
                                                           "is at most this many bits per pixel (bisection)")
    compress.add_argument("--target-psnr", type=float, help="variable-rate --weights: per image, the lambda whose "
                                                            "decoded PSNR is at least this (dB)")
    compress.add_argument("--max-passes", type=int, default=12, help="coding passes a --target search may take")
    compress.set_defaults(func=_cmd_compress)

    decompress = sub.add_parser("decompress", help=".kdic bitstreams to PNG")
    add_codec_args(decompress, "decompress")
    decompress.set_defaults(func=_cmd_decompress)

    train = sub.add_parser("train", help="train a model (works under torchrun for DDP)")
    train.add_argument("--model", help="preset name or model-config JSON file (default: the --init model's)")
    train.add_argument("--init", help="start from these weights (e.g. fine-tune another lambda from a trained model, "
                                      "or, with --variable-rate, a variable-rate model from a fixed-rate one)")
    add_training_args(train, lmbda_required=False)
    train.add_argument("--padding", choices=["zeros", "replicate"],
                       help="how convolutions pad (default: the model's; replicate keeps flat borders flat)")
    train.add_argument("--variable-rate", action="store_true",
                       help="one model for a range of lambdas (gain units; lambda drawn per step): the preset's "
                            "'-vr' variant; --lmbda is then optional, the rate point validation reports first")
    train.add_argument("--lmbdas", type=float, nargs="+", metavar="L",
                       help="anchor lambdas of --variable-rate, increasing (default: 8 from 0.0018 to 0.1)")
    train.set_defaults(func=_cmd_train)

    distill = sub.add_parser("distill", help="distill a student from a teacher checkpoint (SMoDi and ablations)")
    distill.add_argument("--teacher", required=True, help="teacher weights (.safetensors written by kdic)")
    distill.add_argument("--student", help="student preset, model-config JSON, or 'derive' (teacher-guided "
                                             "construction); default: the teacher's registered student, else derive")
    distill.add_argument("--stage1-channels", type=int, help="width of the first (and mirrored last) stage of a derived student")
    distill.add_argument("--width-scale", type=float, default=0.65,
                         help="width factor of plain conv/GDN stages of a derived student (0.65: about half the MACs)")
    from .distill.strategy import available_strategies

    distill.add_argument("--strategy", default="smodi", help=f"strategy name ({', '.join(available_strategies())}; "
                                                               "default smodi) or a strategy JSON file")
    distill.add_argument("--teacher-init", action="store_true",
                         help="initialise kept student blocks from the teacher (the teacher-using strategies do anyway)")
    distill.add_argument("--final-fraction", type=float, help="share of the budget for the last (end-to-end) phase; "
                                                              "default: the strategy's own (0.75 for smodi, as in the paper)")
    add_training_args(distill, lmbda_required=False)
    distill.set_defaults(func=_cmd_distill)
    if recipe is not None:
        _apply_recipe({"train": train, "distill": distill}, recipe)

    ev = sub.add_parser("eval", help="real-bitstream RD evaluation of checkpoints (one curve), CompressAI JSON")
    ev.add_argument("--weights", nargs="+", required=True,
                    help="weights files: one per rate point, or variable-rate ones coded at several lambdas each")
    ev.add_argument("--lmbdas", type=float, nargs="+", metavar="L", help="rate points of variable-rate weights")
    ev.add_argument("--rates", type=int,
                    help="variable-rate weights without --lmbdas: this many lambdas log-spaced over their range "
                         "(default 8)")
    ev.add_argument("--data", required=True, help="image folder, e.g. ../shared/data/kodak")
    ev.add_argument("-o", "--output", required=True, help="results JSON to write")
    ev.add_argument("--name", help="curve name (default: the model name)")
    ev.add_argument("--limit", type=int, help="only the first N images")
    ev.add_argument("--bitstreams", help="existing folder to keep the .kdic files in")
    ev.add_argument("--quiet", action="store_true")
    ev.set_defaults(func=_cmd_eval)

    bd = sub.add_parser("bdrate", help="BD-rate and BD-PSNR of curves against an anchor curve")
    bd.add_argument("tests", nargs="+", help="result files (FILE or FILE#dataset/method)")
    bd.add_argument("--anchor", required=True, help="anchor curve, e.g. ../shared/data/anchors/summary_psnr_rgb.json#kodak/compressai/vtm")
    bd.add_argument("--metric", default="psnr-rgb", choices=["psnr-rgb", "ms-ssim-rgb"])
    bd.add_argument("--method", default="pchip", choices=["pchip", "cubic", "akima"])
    bd.add_argument("--json", action="store_true")
    bd.set_defaults(func=_cmd_bdrate)

    plot = sub.add_parser("plot", help="RD plot (PNG and SVG) of result files and anchors")
    plot.add_argument("curves", nargs="+", help="result files (FILE or FILE#dataset/method)")
    plot.add_argument("-o", "--output", required=True, help="output path without suffix; .png and .svg are written")
    plot.add_argument("--metric", default="psnr-rgb", choices=["psnr-rgb", "ms-ssim-rgb"])
    plot.add_argument("--anchors", nargs="*", default=[], metavar="CURVE",
                      help="other codecs to compare with (same forms), drawn dashed")
    plot.add_argument("--max-bpp", type=float, help="show bpp from 0 to this only (the y range follows)")
    plot.add_argument("--title", default="")
    plot.set_defaults(func=_cmd_plot)

    base = sub.add_parser("baselines", help="measure classical codecs (JPEG, WebP, AVIF, JPEG 2000, ...) like kdic")
    base.add_argument("--data", required=True, help="image folder")
    base.add_argument("-o", "--output", required=True, help="existing folder for one JSON per codec")
    base.add_argument("--codecs", nargs="*", help="only these codecs (default: all available)")
    base.add_argument("--limit", type=int, help="only the first N images")
    base.add_argument("--quiet", action="store_true")
    base.set_defaults(func=_cmd_baselines)

    bn = sub.add_parser("bench", help="params, MACs, latency, throughput and memory of presets or checkpoints")
    bn.add_argument("models", nargs="+", help="presets or weights files (ratios are to the first)")
    bn.add_argument("--size", default="768x512", help="latency resolution WIDTHxHEIGHT")
    bn.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up")
    bn.add_argument("--train-batch", type=int, default=8)
    bn.add_argument("--train-size", type=int, default=256)
    bn.add_argument("--train-steps", type=int, default=2, help="timed training steps (0 skips throughput)")
    bn.add_argument("--threads", type=int, help="torch threads (default: all)")
    bn.add_argument("--json", help="also write the report as JSON")
    bn.add_argument("--markdown", help="also write the tables as markdown")
    bn.set_defaults(func=_cmd_bench)

    energy = sub.add_parser("energy", help="channel-wise energy of encoder features (the paper's Figs. 4-5)")
    energy.add_argument("--weights", nargs="+", required=True, help="weights files to analyse")
    energy.add_argument("--names", nargs="+", help="one display name per weights file")
    energy.add_argument("--data", required=True, help="image folder, e.g. ../shared/data/kodak")
    energy.add_argument("-o", "--output", required=True, help="results JSON to write")
    energy.add_argument("--plot", help="also draw PREFIX-sorted and PREFIX-unsorted (.png and .svg)")
    energy.add_argument("--limit", type=int, help="only the first N images")
    energy.add_argument("--quiet", action="store_true")
    energy.set_defaults(func=_cmd_energy)

    demo = sub.add_parser("demo", help="the main job: code a sample with the shipped teacher and student, "
                                       "then a short SMoDi distillation")
    demo.add_argument("--quality", type=int, default=3, choices=[1, 2, 3, 4], help="rate point of the shipped weights")
    demo.add_argument("--distill-steps", type=int, default=240, help="steps of the distillation demo")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)

    export = sub.add_parser("export", help="rewrite a weights file (e.g. as float16 for shipping)")
    export.add_argument("weights", help="weights file written by kdic")
    export.add_argument("-o", "--output", required=True, help="weights file to write")
    export.add_argument("--half", action="store_true", help="store floating-point tensors as float16")
    export.add_argument("--force", action="store_true", help="overwrite an existing output")
    export.add_argument("--quiet", action="store_true")
    export.set_defaults(func=_cmd_export)

    imp = sub.add_parser("import", help="convert another project's checkpoint (CompressAI, LIC_TCM) into kdic weights")
    imp.add_argument("source", help="checkpoint: .pth/.pth.tar/.pt (read with weights_only=True) or .safetensors")
    imp.add_argument("-o", "--output", required=True, help="kdic weights file to write")
    imp.add_argument("--from", dest="source_kind", required=True, metavar="SOURCE",
                     help="what the checkpoint holds: " + ", ".join(__import__("kdic.importers", fromlist=["x"]).IMPORTERS))
    imp.add_argument("--partial", action="store_true", help="the checkpoint holds only the transforms (g_a.*, g_s.*)")
    imp.add_argument("--lmbda", type=float, help="the lambda it was trained at (recorded; distillation defaults to it)")
    imp.add_argument("--name", help="model name (default: the source and its widths)")
    imp.add_argument("--force", action="store_true", help="overwrite an existing output")
    imp.add_argument("--quiet", action="store_true")
    imp.set_defaults(func=_cmd_import)

    info = sub.add_parser("info", help="show the header of a .kdic file or the metadata of a weights file")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print the full metadata block")
    info.set_defaults(func=_cmd_info)

    datasets = sub.add_parser("datasets", help="list and fetch the standard data sets (Kodak, CLIC, Tecnick, DIV2K, "
                                               "Flickr2W) into a cache, verified by SHA-256, resumable")
    datasets.add_argument("action", choices=["list", "fetch", "path"], help="list the sets; fetch one; print its folder")
    datasets.add_argument("name", nargs="?", help="the set to fetch or locate (see 'kdic datasets list')")
    datasets.add_argument("--cache", type=Path, help="cache folder (default: $KDIC_DATA or ~/.cache/kdic/datasets)")
    datasets.add_argument("--quiet", action="store_true", help="no progress bars")
    datasets.set_defaults(func=_cmd_datasets)
    return parser


def _rank() -> int:
    """This process's rank under torchrun (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def _run(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except KdicError as exc:
        print(f"kdic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdic: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(_recipe_in(argv))
    except KdicError as exc:
        print(f"kdic: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    code = _run(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun worker has written its files and destroyed its process group by now. Gloo can
        # still abort the interpreter's own teardown ("terminate called without an active
        # exception", about 1 exit in 30 here), which torchrun reports as a failed job: skip it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
