"""Batches never lose an image; outputs are created exclusively and no kill leaves debris (issue 16)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import kdic
from kdic import fileio
from kdic.cli import main
from kdic.data import sample_image_path

from .helpers import train_tiny

# Children import kdic.fileio without kdic/__init__ (which loads torch), so they start in well under a second.
CHILD_PRELUDE = """
import importlib.util, sys, time, types
from pathlib import Path
package = types.ModuleType("kdic")
package.__path__ = list(importlib.util.find_spec("kdic").submodule_search_locations)
sys.modules["kdic"] = package
"""


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    import torch

    torch.manual_seed(0)
    return str(kdic.save(kdic.build_model("kdic-tiny"), tmp_path_factory.mktemp("w") / "w.safetensors"))


def _images(folder: Path, *names: str) -> Path:
    """Small crops of the bundled sample, one per name (the suffix picks the format)."""
    folder.mkdir(exist_ok=True)
    sample = Image.open(sample_image_path()).convert("RGB")
    for i, name in enumerate(names):
        sample.crop((40 * i, 0, 40 * i + 80, 72)).save(folder / name)
    return folder


def _error_lines(err: str) -> list[str]:
    return [line for line in err.replace("\r", "\n").splitlines() if line.startswith("kdic: ")]


def _child(script: str, *args: str) -> subprocess.Popen:
    """A python child that prints one line once it has reached the state the test needs."""
    child = subprocess.Popen([sys.executable, "-c", CHILD_PRELUDE + script, *args], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_name_collision_is_refused_before_anything_is_written(tmp_path, weights, capsys):
    src = _images(tmp_path / "in", "c.png", "c.jpg", "d.png")
    (tmp_path / "out").mkdir()
    for output in (["-o", str(tmp_path / "out")], []):  # into a folder, and beside the inputs
        assert main(["compress", str(src), *output, "--weights", weights, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "c.jpg and " in err and "c.png would both be written to " in err
        assert "c.kdic" in err
    assert os.listdir(tmp_path / "out") == []
    assert sorted(os.listdir(src)) == ["c.jpg", "c.png", "d.png"]


def test_one_bad_input_is_skipped_and_the_rest_coded(tmp_path, weights, capsys):
    src = _images(tmp_path / "in", "a.png", "c.png")
    (src / "b.png").write_text("not an image")
    (src / "x.png").mkdir()  # a folder with an image's name is no input
    bits, decoded = tmp_path / "bits", tmp_path / "decoded"
    bits.mkdir()
    decoded.mkdir()
    assert main(["compress", str(src), "-o", str(bits), "--weights", weights]) == 2
    out, err = capsys.readouterr()
    assert sorted(os.listdir(bits)) == ["a.kdic", "c.kdic"]
    lines = _error_lines(err)
    assert len(lines) == 2 and lines[0].startswith(f"kdic: error: {src / 'b.png'}: not a readable image")
    assert lines[1] == "kdic: 1 of 3 inputs failed"
    assert [line.split(" -> ")[0] for line in out.splitlines()] == ["a.png", "c.png"]  # whole lines, no bar

    (bits / "corrupt.kdic").write_bytes((bits / "a.kdic").read_bytes()[:40])
    assert main(["decompress", str(bits), "-o", str(decoded), "--weights", weights, "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and sorted(os.listdir(decoded)) == ["a.png", "c.png"]
    lines = _error_lines(err)
    assert len(lines) == 2 and lines[0].startswith(f"kdic: error: {bits / 'corrupt.kdic'}: ")
    assert lines[1] == "kdic: 1 of 3 inputs failed"


def test_an_input_is_never_its_own_output(tmp_path, weights, capsys):
    src = _images(tmp_path, "a.png")
    image = src / "a.png"
    before = image.read_bytes()
    os.link(image, tmp_path / "linked.kdic")
    for output in (image, tmp_path / "linked.kdic", tmp_path / "." / "a.png"):
        assert main(["compress", str(image), "-o", str(output), "--weights", weights, "--force", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"would overwrite the input {image}" in err and "even with --force" in err
    assert image.read_bytes() == before


def test_outputs_are_created_exclusively(tmp_path, weights, capsys, monkeypatch):
    image = _images(tmp_path, "a.png") / "a.png"
    dst = tmp_path / "a.kdic"
    assert main(["compress", str(image), "-o", str(dst), "--weights", weights, "--quiet"]) == 0
    assert main(["compress", str(image), "-o", str(dst), "--weights", weights, "--quiet"]) == 2
    assert "exists; use --force" in capsys.readouterr().err

    # another process creates the output after the plan checked it: it wins, this one says so on one line
    import kdic.codec.target

    encode = kdic.codec.target.encode_image

    def encode_then_lose_the_race(*args, **kwargs):
        result = encode(*args, **kwargs)
        (tmp_path / "b.kdic").write_bytes(b"the other writer")
        return result

    monkeypatch.setattr(kdic.codec.target, "encode_image", encode_then_lose_the_race)
    assert main(["compress", str(image), "-o", str(tmp_path / "b.kdic"), "--weights", weights, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "b.kdic already exists" in err
    assert (tmp_path / "b.kdic").read_bytes() == b"the other writer"
    assert sorted(os.listdir(tmp_path)) == ["a.kdic", "a.png", "b.kdic"]


def _refuse_link(fd, target):
    raise OSError(errno.EXDEV, "Invalid cross-device link")


@pytest.mark.parametrize(
    "fallback",
    [None, ("_link_fd", _refuse_link), ("_anonymous_file", lambda folder: None)],
    ids=["o_tmpfile", "o_tmpfile-unlinkable", "named-temp"],
)
def test_of_two_racing_writers_exactly_one_wins(tmp_path, monkeypatch, fallback):
    if fallback is not None:
        monkeypatch.setattr(fileio, *fallback)
    dst = tmp_path / "out.bin"

    def write_while_another_process_links(f):
        f.write(b"loser")
        fileio.atomic_write_bytes(dst, b"winner", exclusive=True)

    with pytest.raises(fileio.OutputExistsError, match="already exists"):
        fileio.atomic_write_file(dst, write_while_another_process_links, exclusive=True)
    assert dst.read_bytes() == b"winner" and os.listdir(tmp_path) == ["out.bin"]
    fileio.atomic_write_bytes(dst, b"forced")  # without exclusive (--force) the file is replaced
    assert dst.read_bytes() == b"forced" and os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("exclusive", [True, False], ids=["exclusive", "force"])
def test_a_writer_killed_mid_write_leaves_no_file(tmp_path, exclusive):
    fd = fileio._anonymous_file(tmp_path)
    if fd is None:
        pytest.skip("no O_TMPFILE here: the named temp file fallback is all there is")
    os.close(fd)
    child = _child(
        f"""
from kdic.fileio import atomic_write_file

def write_slowly(f):
    f.write(b"x" * 65536)
    f.flush()
    print("ready", flush=True)
    time.sleep(60)

atomic_write_file(Path(sys.argv[1]) / "out.png", write_slowly, exclusive={exclusive})
""",
        str(tmp_path),
    )
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert os.listdir(tmp_path) == []


def _train(data: Path, run: Path, *extra: str) -> int:
    return train_tiny(data, run, "--lmbda 0.013 --steps 2 --batch-size 1 --crop 64", *extra)


def test_run_folder_lock_and_resume_after_a_kill_before_the_first_checkpoint(tmp_path, capsys):
    data = _images(tmp_path / "data", "a.png", "b.png")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")  # what a run killed during its first checkpoint write leaves
    (run / "checkpoints" / ".state.safetensors.1a2b3c4d.tmp").write_bytes(b"half a checkpoint")

    holder = _child(
        """
from kdic.fileio import lock_folder

lock = lock_folder(Path(sys.argv[1]), "run folder")
print("ready", flush=True)
time.sleep(60)
""",
        str(run),
    )
    try:
        for extra in (["--resume"], []):
            assert _train(data, run, *extra) == 2
            assert capsys.readouterr().err == (
                f"kdic: error: run folder {run} is in use by another process (pid {holder.pid})\n"
            )
    finally:
        holder.kill()
        holder.wait()

    assert _train(data, run, "--resume") == 0
    assert "has no checkpoint yet; starting at step 0" in capsys.readouterr().err
    assert os.listdir(run / "checkpoints") == ["state.safetensors"]
    assert json.loads((run / "summary.json").read_text())["global_step"] == 2
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "kdic-tiny"
    assert _train(data, run) == 2  # now it holds a checkpoint: a fresh start is refused
    assert "already holds a run" in capsys.readouterr().err
