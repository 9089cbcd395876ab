"""``kdic compress`` and ``kdic decompress``: images to .kdic files and back, one file or folders."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from ..data import DEFAULT_QUALITY, DEFAULT_ROLE, LAMBDA_RANGE, QUALITY_RANGE, ROLES, quality_lmbda
from ..errors import KdicError
from .common import (
    KDIC_SUFFIX,
    add_quiet,
    add_refine_argument,
    code_each,
    command,
    create,
    plan_outputs,
    set_threads,
    timings_line,
)

if TYPE_CHECKING:
    from ..codec.bitstream import Header
    from ..models import LearnedImageCodec


def _add_codec_args(p: argparse.ArgumentParser, verb: str) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=f"file(s) or folder(s) to {verb}")
    p.add_argument("-o", "--output", help="output file, or an existing folder (default: beside each input)")
    p.add_argument("--weights", help="weights file (.safetensors) written by kdic")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument(
        "--verbose",
        action="store_true",
        help="also report what costs extra passes (rate estimate, PSNR), where the time went, the whole "
        "command's time, and what was done to each input (EXIF orientation, colour profile)",
    )
    add_quiet(p, "print nothing but errors")
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads (default: all cores); files of format 3 decode to the same latents whatever "
        "N and whatever the machine",
    )


def _encoder_model(args: argparse.Namespace) -> LearnedImageCodec:
    """Model to encode with: ``--weights FILE``, else the shipped ``--model`` role."""
    from ..checkpoint import load
    from ..data import bundled_weights

    if args.weights:
        if args.model:
            raise KdicError("--model picks shipped weights; it cannot be combined with --weights")
        return load(args.weights)
    return load(bundled_weights(args.model or DEFAULT_ROLE))


@command("compress", "images (PNG, JPEG, ...) to .kdic bitstreams")
def _configure_compress(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    _add_codec_args(p, "compress")
    roles = ", ".join(f"'{role}' ({preset})" for role, preset in ROLES.items())
    p.add_argument("--model", help=f"shipped weights to use: {roles} (default: '{DEFAULT_ROLE}')")
    low, high = QUALITY_RANGE
    p.add_argument(
        "--quality",
        type=float,
        metavar="Q",
        help=f"rate of variable-rate weights: any value from {low:g} to {high:g}, lambda {LAMBDA_RANGE[0]:g} to "
        f"{LAMBDA_RANGE[1]:g} log-linearly (each integer is one of the shipped models' anchors; "
        f"default: {DEFAULT_QUALITY:g}, lambda {quality_lmbda(DEFAULT_QUALITY):.3g}, "
        "unless --lmbda or a target is given)",
    )
    p.add_argument(
        "--lmbda",
        type=float,
        help="rate of variable-rate weights as the lambda itself: any value in their range (kdic info shows it)",
    )
    p.add_argument(
        "--target-bpp",
        type=float,
        help="variable-rate weights: per image, the lambda whose file is at "
        "most this many bits per pixel (bisection on real coding)",
    )
    p.add_argument(
        "--target-psnr",
        type=float,
        help="variable-rate weights: per image, the lambda whose decoded PSNR is at least this (dB)",
    )
    p.add_argument("--max-passes", type=int, default=12, help="coding passes a --target search may take")
    add_refine_argument(p)
    p.set_defaults(func=compress)


def compress(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    set_threads(args.threads)
    from ..codec import IMAGE_SUFFIXES, read_image
    from ..codec.distortion import psnr_uint8
    from ..codec.target import choose_rate, code_at
    from ..fileio import atomic_write_bytes

    pairs = plan_outputs(args.inputs, args.output, IMAGE_SUFFIXES, KDIC_SUFFIX, args.force)
    model = _encoder_model(args)
    choice = choose_rate(
        model, args.lmbda, args.target_bpp, args.target_psnr, args.max_passes, args.quality, args.refine
    )
    report_more = args.verbose and not args.quiet
    loaded = time.perf_counter() - started

    def compress_one(src: Path, dst: Path) -> list[str]:
        notes: list[str] = []
        begun = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            image = read_image(src, notes=notes)  # its errors name the file
        for warning in caught:
            tqdm.write(f"kdic: warning: {warning.message}", file=sys.stderr)
        if report_more:
            for note in notes:
                tqdm.write(f"kdic: note: {src.name}: {note}", file=sys.stderr)
        read = time.perf_counter() - begun
        try:
            coded = code_at(model, image, choice, estimate=report_more, reconstruct=report_more)
        except KdicError as exc:
            raise KdicError(f"{src}: {exc}") from None
        written = time.perf_counter()
        create(dst, lambda: atomic_write_bytes(dst, coded.data, exclusive=not args.force))
        report = coded.report
        report.timings.update({"reading the image": read, "writing the file": time.perf_counter() - written})
        if args.quiet:
            return []
        line = f"{src.name} -> {dst}: {report.num_bytes} bytes, {report.bits_per_pixel:.4f} bpp"
        if report_more:
            assert coded.reconstruction is not None  # reconstruct=report_more
            line += (
                f" (estimate {report.estimated_bits_per_pixel:.4f}), PSNR "
                f"{psnr_uint8(coded.reconstruction, image):.2f} dB"
            )
        if model.variable_rate:
            line += f", lambda {coded.lmbda:.5g}"
        if choice.metric is not None:
            from ..codec.target import TARGETS

            unit = TARGETS[choice.metric].unit
            assert model.rate is not None  # choose_rate gives targets to variable-rate weights only
            low, high = model.rate.range
            line += f" ({coded.passes} coding passes for {choice.target:g} {unit}: {coded.value:.4f}"
            line += ")" if coded.met else f", cannot reach it within lambda {low:g} to {high:g})"
        return [line, timings_line(report.timings, report.symbols)] if report_more else [line]

    code = code_each(pairs, compress_one, "compressing", "image", args.quiet)
    if report_more:
        print(
            f"kdic: {len(pairs)} image(s) in {time.perf_counter() - started:.3f} s "
            f"(importing the codec and loading the weights {loaded:.3f} s)",
            file=sys.stderr,
        )
    return code


def _decoder_model(weights: str | None, header: Header) -> LearnedImageCodec:
    """Model that decodes ``header``: ``--weights FILE``, else the shipped weights whose digest it names."""
    from ..checkpoint import load
    from ..data import weights_for_digest

    return load(weights if weights else weights_for_digest(header.model_id, header.weights_digest))


@command("decompress", ".kdic bitstreams to PNG")
def _configure_decompress(p: argparse.ArgumentParser, argv: Sequence[str]) -> None:
    _add_codec_args(p, "decompress")
    p.set_defaults(func=decompress)


def decompress(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    set_threads(args.threads)
    from ..codec import decode_bytes, unpack, write_png

    pairs = plan_outputs(args.inputs, args.output, (KDIC_SUFFIX,), ".png", args.force, ".decoded.png")
    models: dict[tuple[str, bytes], LearnedImageCodec] = {}

    def decompress_one(src: Path, dst: Path) -> list[str]:
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
        create(dst, lambda: write_png(image, dst, exclusive=not args.force))
        if args.quiet:
            return []
        line = f"{src.name} -> {dst}: {report.width}x{report.height}, {report.bits_per_pixel:.4f} bpp"
        return [line, timings_line(report.timings, report.symbols)] if args.verbose else [line]

    code = code_each(pairs, decompress_one, "decompressing", "file", args.quiet)
    if args.verbose and not args.quiet:
        print(
            f"kdic: {len(pairs)} file(s) in {time.perf_counter() - started:.3f} s (start-up and loading "
            "weights included)",
            file=sys.stderr,
        )
    return code
