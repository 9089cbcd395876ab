"""The default codec: shipped-weights resolution, flag-free compress/decompress, export, demo, energy.

Logic tests use freshly saved float16 weights in a temporary weights folder; the tests at the end
use the weights that ship in the package (skipped, with the reason, in a checkout that has none).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import kdic
import kdic.data
from kdic.checkpoint import weights_digest
from kdic.cli import main
from kdic.codec import encode_image, read_image, unpack
from kdic.data import ROLES, SAMPLES_DIR, WEIGHTS_DIR, sample_image_path

SHIPPED = WEIGHTS_DIR / f"{ROLES['student']}-q3.safetensors"


@pytest.fixture()
def weights_dir(tmp_path, monkeypatch) -> Path:
    """Untrained float16 teacher and student at qualities 2 and 3 as the 'shipped' weights."""
    folder = tmp_path / "weights"
    folder.mkdir()
    for preset in ROLES.values():
        for quality, lmbda in ((2, 0.0067), (3, 0.013)):
            torch.manual_seed(quality)
            kdic.save(
                kdic.build_model(preset), folder / f"{preset}-q{quality}.safetensors", lmbda=lmbda, dtype=torch.float16
            )
    monkeypatch.setattr(kdic.data, "WEIGHTS_DIR", folder)
    (folder / kdic.data.INDEX_NAME).write_text(json.dumps(kdic.data.build_weights_index()))
    return folder


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    shutil.copy(sample_image_path(), path)
    return path


def test_compress_without_flags_uses_student_quality_3_and_decodes_by_digest(weights_dir, photo, capsys):
    assert main(["compress", str(photo)]) == 0
    bitstream = photo.with_suffix(".kdic")
    assert bitstream.is_file()
    header, _ = unpack(bitstream.read_bytes())
    student_q3 = kdic.load(weights_dir / "kdic-tiny-q3.safetensors")
    assert header.model_id == "kdic-tiny"
    assert header.weights_digest == weights_digest(student_q3)[: len(header.weights_digest)]
    assert main(["decompress", str(bitstream)]) == 0  # no --weights: found among the shipped files
    decoded = read_image(photo.with_suffix(".decoded.png"))
    _, reconstruction, _ = encode_image(student_q3, read_image(photo))
    assert np.array_equal(decoded, reconstruction)
    assert main(["decompress", str(bitstream)]) == 2  # the output exists now: refused without --force
    assert "exists" in capsys.readouterr().err


def test_quality_and_role_pick_other_shipped_weights(weights_dir, photo):
    for args, preset, lmbda in (
        (["--quality", "2"], "kdic-tiny", 0.0067),
        (["--model", "teacher"], "s2c-hybrid-tiny", 0.013),
    ):
        out = photo.parent / f"{preset}-{lmbda}.kdic"
        assert main(["compress", str(photo), "-o", str(out), *args, "--quiet"]) == 0
        assert unpack(out.read_bytes())[0].model_id == preset
        assert main(["decompress", str(out), "-o", str(out.with_suffix(".png")), "--quiet"]) == 0


def test_shipped_weights_errors_are_one_line(weights_dir, photo, tmp_path, capsys):
    cases = [
        ["compress", str(photo), "--quality", "4"],  # not shipped
        ["compress", str(photo), "--weights", str(weights_dir / "kdic-tiny-q3.safetensors"), "--quality", "2"],
    ]
    for args in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("kdic: error: ") and err.count("\n") == 1
    other = tmp_path / "other.safetensors"
    torch.manual_seed(99)
    kdic.save(kdic.build_model("kdic-tiny"), other)
    assert main(["compress", str(photo), "-o", str(tmp_path / "o.kdic"), "--weights", str(other), "--quiet"]) == 0
    assert main(["decompress", str(tmp_path / "o.kdic"), "-o", str(tmp_path / "o.png")]) == 2
    assert "no shipped weights match" in capsys.readouterr().err
    assert not (tmp_path / "o.png").exists()


def test_export_half_halves_the_file_and_loads_as_float32(tmp_path, kodak_sample):
    torch.manual_seed(0)
    full = kdic.save(kdic.build_model("kdic-tiny"), tmp_path / "full.safetensors", lmbda=0.013)
    half = tmp_path / "half.safetensors"
    assert main(["export", str(full), "-o", str(half), "--half", "--quiet"]) == 0
    assert half.stat().st_size < 0.55 * full.stat().st_size
    a, b = kdic.load(full), kdic.load(half)
    assert all(p.dtype == torch.float32 for p in b.parameters()) and b.lmbda == 0.013
    x = kodak_sample[..., :128, :128]
    with torch.no_grad():
        # float16 rounding may flip a few rounded latents; the reconstructions stay close on average
        assert (a(x)["x_hat"] - b(x)["x_hat"]).abs().mean() < 5e-3
    assert main(["export", str(full), "-o", str(half), "--half"]) == 2  # exists, no --force


@pytest.mark.slow
def test_demo_codes_with_both_roles_and_runs_every_smodi_phase(weights_dir, capsys):
    from kdic.demo import run_demo

    run_demo(quality=3, distill_steps=36, quiet=True)
    out = capsys.readouterr().out
    assert "student  kdic-tiny" in out and "teacher  s2c-hybrid-tiny" in out
    for phase in ("stage1", "stage6", "channel-context", "param-aggregation", "finetune"):
        assert phase in out


def test_energy_groups_and_cli(tmp_path, capsys):
    from kdic.eval.energy import channel_energy, group_shares

    shares = group_shares(np.array([8.0, 1.0, 4.0, 2.0, 0.5, 0.25, 0.125, 0.125]))
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 1) < 1e-12 and shares[0] == 0.5
    torch.manual_seed(0)
    model = kdic.build_model("kdic-tiny")
    image = read_image(sample_image_path())
    energy = channel_energy(model, [("s", image)])
    assert [(f, e.size) for f, e in energy.items()] == [("stage1", 16), ("stage2", 32), ("stage3", 32), ("latent", 96)]
    weights = kdic.save(model, tmp_path / "w.safetensors")
    assert (
        main(
            [
                "energy",
                "--weights",
                str(weights),
                "--data",
                str(SAMPLES_DIR),
                "-o",
                str(tmp_path / "e.json"),
                "--plot",
                str(tmp_path / "e"),
                "--quiet",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "e.json").read_text())["models"][0]
    assert np.allclose(report["features"]["latent"]["energy"], energy["latent"])
    assert all((tmp_path / f"e-{kind}.{ext}").is_file() for kind in ("sorted", "unsorted") for ext in ("png", "svg"))


@pytest.mark.skipif(not SHIPPED.is_file(), reason=f"no shipped weights in this checkout ({SHIPPED} missing)")
def test_shipped_student_codes_real_files_close_to_its_estimate(tmp_path, kodak_dir):
    """Issue 4.5 on trained weights: real bytes (header included) within 2% of the likelihood estimate."""
    from kdic.eval.validation import load_validation

    model = kdic.load(SHIPPED)
    real = estimate = 0.0
    for _, image in load_validation(kodak_dir, 3):
        data, _, report = encode_image(model, image)
        real += 8 * len(data)
        estimate += report.estimated_bits
    assert abs(real - estimate) / estimate < 0.02
