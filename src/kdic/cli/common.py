"""What every command shares: the command table, the help formatter, input/output planning for the
file-coding commands, and small output helpers."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import KdicError

KDIC_SUFFIX = ".kdic"


@dataclass(frozen=True)
class Command:
    help: str
    configure: Callable[[argparse.ArgumentParser, Sequence[str]], None]  # (its parser, the whole argv)


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str) -> Callable:
    """Register ``configure(parser, argv)`` as the parser builder of ``kdic NAME`` (it sets ``func``)."""

    def register(configure: Callable[[argparse.ArgumentParser, Sequence[str]], None]) -> Callable:
        if name in COMMANDS:
            raise ValueError(f"command {name!r} is already registered")
        COMMANDS[name] = Command(help, configure)
        return configure

    return register


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default, unless it has none (None, False, an empty list) or says it already,
    and never splits a name at its hyphens (``prune-finetune`` stays one word)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def add_quiet(p: argparse.ArgumentParser, what: str = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def add_refine_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="STEPS",
        help="refine each latent this many gradient steps for the decoder before coding it: a smaller file "
        "for the same quality at the cost of encoding time (about one analysis+synthesis pass per step); "
        "decoding is unchanged (0: off)",
    )


def rank() -> int:
    """This process's rank under torchrun (0 when run alone)."""
    return int(os.environ.get("RANK", "0"))


def checked_folder(path: str | Path) -> Path:
    """``path``'s folder, which must exist before anything slow starts."""
    path = Path(path)
    if not path.parent.is_dir():
        raise KdicError(f"output folder {path.parent} does not exist")
    return path


def write_json(data: dict | list, path: str | Path) -> None:
    from ..fileio import atomic_write_bytes

    atomic_write_bytes(checked_folder(path), (json.dumps(data, indent=2) + "\n").encode())


def set_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise KdicError("--threads must be at least 1")
        import torch

        torch.set_num_threads(threads)


def plan_outputs(
    inputs: Sequence[str],
    output: str | None,
    suffixes: Iterable[str],
    out_suffix: str,
    force: bool,
    beside_suffix: str | None = None,
) -> list[tuple[Path, Path]]:
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
    many = len(sources) > 1 or Path(inputs[0]).is_dir()
    if output is None:
        pairs = [(src, src.with_suffix(beside_suffix or out_suffix)) for src in sources.values()]
    elif many or Path(output).is_dir():
        target = Path(output)
        if not target.is_dir():
            hint = f" (several inputs are written into a folder; {target} names a file)" if many else ""
            raise KdicError(f"output folder {target} does not exist{hint}")
        pairs = [(src, target / (src.stem + out_suffix)) for src in sources.values()]
    else:
        pairs = [(next(iter(sources.values())), checked_folder(output))]

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
            raise KdicError(
                f"output {dst} would overwrite the input {input_files[identity(dst)]} (refused even with --force)"
            )
        if not force:
            raise KdicError(f"{dst} exists; use --force to overwrite")
    return pairs


def code_each(
    pairs: list[tuple[Path, Path]], code: Callable[[Path, Path], list[str]], desc: str, unit: str, quiet: bool
) -> int:
    """Run ``code(src, dst)`` on every pair and print the lines it returns. A single input fails like
    any error; of several, a failing one is reported on one line and skipped, and a closing count
    and exit status 2 say so. Lines go through the progress bar, so they never interleave with it."""
    failed = 0
    with tqdm(pairs, desc=desc, disable=quiet or len(pairs) == 1, unit=unit, file=sys.stderr) as bar:
        for src, dst in bar:
            try:
                for line in code(src, dst):
                    bar.write(line, file=sys.stdout)
            except KdicError as exc:
                if len(pairs) == 1:
                    raise
                failed += 1
                bar.write(f"kdic: error: {exc}", file=sys.stderr)
    if failed:
        print(f"kdic: {failed} of {len(pairs)} inputs failed", file=sys.stderr)
        return 2
    return 0


def create(dst: Path, write: Callable[[], None]) -> None:
    """Run ``write()``, reporting an OS failure (full disk, no permission) as one line about ``dst``."""
    try:
        write()
    except OSError as exc:
        raise KdicError(f"{dst}: cannot write ({exc.strerror or exc})") from None


def timings_line(timings: dict[str, float], symbols: int) -> str:
    parts = ", ".join(f"{k} {v:.3f} s" for k, v in timings.items())
    return f"    time {sum(timings.values()):.3f} s: {parts}; {symbols} symbols"
