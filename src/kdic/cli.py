"""``kdic`` command line. Sub-commands are thin wrappers over the library.

Every user error ends in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from . import __version__
from .errors import KdicError


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


def _cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import read_metadata

    metadata = read_metadata(args.file)
    if args.json:
        print(json.dumps(metadata, indent=2))
        return 0
    config = metadata["config"]
    print(f"file:          {args.file}")
    print(f"model:         {config['name']} ({config.get('description', '')})")
    print(f"lambda:        {metadata.get('lmbda')}")
    print(f"kdic version:  {metadata.get('kdic_version')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdic", description="Learned image compression and its knowledge distillation.")
    parser.add_argument("--version", action="version", version=f"kdic {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    models = sub.add_parser("models", help="list the model zoo with params and MACs beside the paper's figures")
    models.add_argument("names", nargs="*", help="presets to count (default: all)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.add_argument("--quiet", action="store_true", help="no progress bar")
    models.set_defaults(func=_cmd_models)

    info = sub.add_parser("info", help="show the metadata of a kdic weights file")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print the full metadata block")
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KdicError as exc:
        print(f"kdic: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kdic: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
