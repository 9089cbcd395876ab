"""The console script: zoo report and clean one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from kdic.cli import main

from .helpers import run_kdic


def test_models_json_has_paper_columns(capsys):
    assert main(["models", "kdic", "tcm-l", "--json", "--quiet"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["kdic"]["paper_params_m"] == 47.61
    assert abs(rows["tcm-l"]["macs_deviation_pct"]) < 1


def test_models_table_through_the_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "kdic", "models", "s2c-hybrid", "--quiet"], capture_output=True, text=True, check=True
    )
    assert "| s2c-hybrid | 79.60 | 79.71 | 4.171 |" in result.stdout


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not weights")
    for args in (
        ["info", str(bad)],
        ["models", "no-such-model", "--quiet"],
        [
            "distill",
            "--teacher",
            str(bad),
            "--strategy",
            "vanilla",
            "--teacher-init",
            "--data",
            str(tmp_path),
            "--run-dir",
            str(tmp_path / "run"),
        ],
    ):
        result = run_kdic(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("kdic: error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_info_prints_weights_metadata(tmp_path, capsys):
    import kdic

    path = kdic.save(kdic.build_model("kdic-tiny"), tmp_path / "w.safetensors", lmbda=0.013)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kdic-tiny" in out and "0.013" in out


def _weights(tmp_path):
    import torch

    import kdic

    torch.manual_seed(0)
    return str(kdic.save(kdic.build_model("kdic-tiny"), tmp_path / "w.safetensors"))


def test_compress_decompress_files_and_folders(tmp_path):
    from PIL import Image

    from kdic.data import sample_image_path

    weights = _weights(tmp_path)
    src = tmp_path / "in"
    src.mkdir()
    image = Image.open(sample_image_path())
    image.crop((0, 0, 100, 70)).save(src / "a.png")
    image.crop((50, 50, 117, 143)).convert("L").save(src / "b.png")
    (tmp_path / "bits").mkdir()
    (tmp_path / "out").mkdir()
    result = run_kdic("compress", str(src), "-o", str(tmp_path / "bits"), "--weights", weights, "--verbose")
    assert result.returncode == 0, result.stderr
    assert "a.png -> " in result.stdout and "entropy coding" in result.stdout and "bpp (estimate" in result.stdout
    result = run_kdic("decompress", str(tmp_path / "bits"), "-o", str(tmp_path / "out"), "--weights", weights)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "out" / "a.png").size == (100, 70)
    assert Image.open(tmp_path / "out" / "b.png").size == (67, 93)
    info = run_kdic("info", str(tmp_path / "bits" / "a.kdic"), "--json")
    assert json.loads(info.stdout)["width"] == 100
    # a second run refuses to overwrite unless --force
    again = run_kdic("compress", str(src / "a.png"), "-o", str(tmp_path / "bits" / "a.kdic"), "--weights", weights)
    assert again.returncode == 2 and "exists; use --force" in again.stderr
    forced = run_kdic(
        "compress",
        str(src / "a.png"),
        "-o",
        str(tmp_path / "bits" / "a.kdic"),
        "--weights",
        weights,
        "--force",
        "--quiet",
    )
    assert forced.returncode == 0 and forced.stdout == ""


def test_codec_errors_are_one_line_and_leave_no_output(tmp_path):
    weights = _weights(tmp_path)
    not_image = tmp_path / "x.png"
    not_image.write_text("not an image")
    from kdic.data import sample_image_path

    good = tmp_path / "good.kdic"
    assert run_kdic("compress", str(sample_image_path()), "-o", str(good), "--weights", weights).returncode == 0
    truncated = tmp_path / "t.kdic"
    truncated.write_bytes(good.read_bytes()[:200])
    empty = tmp_path / "e.kdic"
    empty.write_bytes(b"")
    cases = [
        (["compress", str(not_image), "-o", str(tmp_path / "o1.kdic"), "--weights", weights], "not a readable image"),
        (
            ["compress", str(sample_image_path()), "-o", str(tmp_path / "missing" / "o.kdic"), "--weights", weights],
            "output folder",
        ),
        (["decompress", str(truncated), "-o", str(tmp_path / "o2.png"), "--weights", weights], "checksum mismatch"),
        (["decompress", str(empty), "-o", str(tmp_path / "o3.png"), "--weights", weights], "file is empty"),
        (["decompress", str(good), "-o", str(tmp_path / "o4.png")], "no shipped weights match"),
        (
            ["compress", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o5.kdic"), "--weights", weights],
            "no such file",
        ),
    ]
    for args, message in cases:
        result = run_kdic(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("kdic: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    leftovers = {p.name for p in tmp_path.iterdir()} - {"w.safetensors", "x.png", "good.kdic", "t.kdic", "e.kdic"}
    assert leftovers == set()


def test_every_option_has_help_and_help_shows_defaults_and_registries():
    import argparse

    from kdic.cli import build_parser
    from kdic.cli.common import COMMANDS
    from kdic.configs import bundled_names

    for name in COMMANDS:
        parser = build_parser(name)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"kdic {name} {action.option_strings or action.dest}: no help text"
        text = " ".join(sub.format_help().split())
        if name in ("train", "distill"):
            assert "(default: 0.0001)" in text and "(default: 2000)" in text  # --lr, --steps
            for recipe in bundled_names("recipes"):
                assert recipe in text
    distill_help = " ".join(
        build_parser("distill")._subparsers._group_actions[0].choices["distill"].format_help().split()
    )
    for strategy in bundled_names("strategies"):
        assert strategy in distill_help  # prune-finetune included


def test_several_inputs_into_a_file_name_say_what_is_wrong(tmp_path, capsys):
    from kdic.data import sample_image_path

    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(sample_image_path().read_bytes())
    b.write_bytes(sample_image_path().read_bytes())
    assert main(["compress", str(a), str(b), "-o", str(tmp_path / "x.kdic")]) == 2
    err = capsys.readouterr().err
    assert "several inputs are written into a folder" in err and err.count("\n") == 1
