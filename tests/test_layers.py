"""The package's rooms import downward only, and the command line's parser stays free of torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kdic"
# Lowest first: a room may import only rooms before it (and itself). The package root holds only the
# version, the errors and lazy exports, so every room may name it.
ORDER = (
    "errors",
    "registry",
    "limits",
    "lazy",
    "fileio",
    "configs",
    "datasets",
    "layers",
    "entropy",
    "models",
    "checkpoint",
    "importers",
    "data",
    "study",
    "codec",
    "bench",
    "eval",
    "train",
    "distill",
    "demo",
    "cli",
)


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_rooms(path: Path) -> set[str]:
    """Rooms of ``kdic`` that ``path`` imports (absolute or relative, at any depth of the file)."""
    package = ["kdic", *path.relative_to(SRC).parts[:-1]]
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                names = [target + [alias.name] for alias in node.names] if len(target) == 1 else [target]
            else:
                names = [node.module.split(".")] if node.module else []
        elif isinstance(node, ast.Import):
            names = [alias.name.split(".") for alias in node.names]
        else:
            continue
        for name in names:
            if name[0] == "kdic" and len(name) > 1:
                rooms.add(name[1])
    return rooms


def test_rooms_import_downward_only():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 40
    upward = []
    for path in files:
        room = _room(path)
        if room in ("__init__", "__main__"):
            continue
        assert room in ORDER, f"{path}: room {room!r} is not in the layer order"
        for other in _imported_rooms(path) - {room, "__version__", "__init__"}:
            assert other in ORDER, f"{path} imports kdic.{other}, which is not in the layer order"
            if ORDER.index(other) > ORDER.index(room):
                upward.append(f"{path.relative_to(SRC)} ({room}) imports {other}")
    assert upward == []


def test_the_checker_sees_relative_and_lazy_imports(tmp_path):
    assert {"train", "eval", "checkpoint"} <= _imported_rooms(SRC / "distill" / "pipeline.py")
    assert "checkpoint" in _imported_rooms(SRC / "data" / "__init__.py")  # imported inside a function


@pytest.mark.parametrize(
    "argv",
    [
        ["--version"],
        ["--help"],
        ["compress", "--help"],
        ["train", "--bogus"],
        ["distill", "--help"],
        ["eval"],
        ["import", "--bogus"],
    ],
)
def test_parser_and_argument_errors_import_no_torch(argv):
    code = (
        "import sys\nfrom kdic.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
