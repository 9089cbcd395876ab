"""``kdic`` command line. Each command's parser and handler sit together in one module of this package
and call library functions; the parser of a command is only built when that command runs, and
nothing here imports torch before a handler does, so ``kdic --version`` and argument errors answer
at once.

Every user error ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import KdicError
from . import codec, evaluation, studies, tools, training  # noqa: F401  (each registers its commands)
from .common import COMMANDS, HelpFormatter


def build_parser(command: str | None = None, argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``kdic`` parser with every command listed and ``command`` (if any) fully configured."""
    parser = argparse.ArgumentParser(
        prog="kdic",
        description="Learned image compression and its knowledge distillation.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kdic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, entry in COMMANDS.items():
        p = sub.add_parser(name, help=entry.help, description=entry.help, formatter_class=HelpFormatter)
        if name == command:
            entry.configure(p, argv)
    return parser


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
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None, argv)
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
