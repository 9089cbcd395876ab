"""Evaluation and benchmarking: results JSON, BD-rate arithmetic, anchors, baselines, plots, bench tables."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import kdic
from kdic.cli import main
from kdic.codec import read_image
from kdic.data import WEIGHTS_DIR, sample_image_path
from kdic.errors import KdicError
from kdic.eval.baselines import available_codecs, evaluate_codec
from kdic.eval.bdrate import Curve, bd_quality, bd_rate, load_curve
from kdic.eval.plot import plot_curves
from kdic.eval.rd import evaluate_weights

from .conftest import SHARED_DATA
from .helpers import run_kdic

CURVE = Curve("log-linear", (0.1, 0.2, 0.4, 0.8, 1.6), (27.0, 29.5, 32.0, 34.5, 37.0))


@pytest.fixture(scope="module")
def sample_images():
    image = read_image(sample_image_path())
    return [("kodim23.png", image), ("kodim23-crop.png", image[:256, :384].copy())]


def test_eval_writes_compressai_results_from_real_files(tmp_path, sample_images):
    weights = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        weights.append(
            kdic.save(kdic.build_model("kdic-tiny"), tmp_path / f"w{seed}.safetensors", lmbda=0.01 * (seed + 1))
        )
    (tmp_path / "bits").mkdir()
    result = evaluate_weights(weights, sample_images, dataset="sample", bitstream_root=tmp_path / "bits", quiet=True)
    json.loads(json.dumps(result))
    assert set(result) >= {"name", "description", "results", "meta", "per_image"}
    r = result["results"]
    assert set(r) >= {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time", "estimated_bpp"}
    assert all(len(v) == 2 for v in r.values()) and r["bpp"] == sorted(r["bpp"])
    for point in result["per_image"]:
        assert [row["name"] for row in point["images"]] == ["kodim23.png", "kodim23-crop.png"]
        assert all(row["ms-ssim-rgb"] is not None for row in point["images"])
    files = sorted((tmp_path / "bits").rglob("kodim23.kdic"))
    sizes = sorted(8 * f.stat().st_size / (768 * 512) for f in files)
    per_image = sorted(p["images"][0]["bpp"] for p in result["per_image"])
    assert len(files) == 2 and sizes == pytest.approx(per_image)
    from kdic.eval.rd import merge_curves

    halves = [evaluate_weights([w], sample_images, dataset="sample", quiet=True) for w in reversed(weights)]
    merged = merge_curves(halves, "merged")
    for key in ("bpp", "psnr-rgb", "estimated_bpp"):
        assert merged["results"][key] == pytest.approx(r[key])
    assert merged["meta"]["weights"] == result["meta"]["weights"] and merged["name"] == "merged"
    with pytest.raises(ValueError):
        merge_curves([halves[0], {**halves[1], "meta": {**halves[1]["meta"], "images": 5}}], "mixed")
    with pytest.raises(ValueError, match="refine"):
        merge_curves([halves[0], {**halves[1], "meta": {**halves[1]["meta"], "refine_steps": 10}}], "mixed")


@pytest.mark.parametrize("method", ["pchip", "cubic", "akima"])
def test_bd_rate_arithmetic(method):
    assert bd_rate(CURVE, CURVE, method) == pytest.approx(0.0, abs=1e-9)
    assert bd_rate(CURVE.scaled_rate(0.9), CURVE, method) == pytest.approx(-10.0, abs=1e-6)
    assert bd_quality(CURVE, CURVE, method) == pytest.approx(0.0, abs=1e-9)
    shifted = Curve("plus half a dB", CURVE.bpp, tuple(q + 0.5 for q in CURVE.quality))
    assert bd_quality(shifted, CURVE, method) == pytest.approx(0.5, abs=1e-6)


def test_barely_overlapping_curves_warn():
    far = Curve("far", (0.05, 0.1, 0.2), (25.0, 26.5, 28.0))
    with pytest.warns(UserWarning, match="overlap on only"):
        bd_rate(far, CURVE)


def test_bd_quality_needs_shared_rates_not_shared_quality():
    """A much worse codec at the same rates: no BD-rate (no shared PSNR), but a BD-PSNR."""
    worse = Curve("13 dB worse", CURVE.bpp, tuple(q - 13.0 for q in CURVE.quality))
    with pytest.raises(KdicError, match="do not overlap in psnr"):
        bd_rate(worse, CURVE)
    assert bd_quality(worse, CURVE) == pytest.approx(-13.0, abs=1e-6)
    elsewhere = Curve("other rates", tuple(b * 100 for b in CURVE.bpp), CURVE.quality)
    with pytest.raises(KdicError, match="do not overlap in bpp"):
        bd_quality(elsewhere, CURVE)


def test_published_anchors_reproduce_the_readme_cross_checks():
    anchors = SHARED_DATA / "anchors"
    if not anchors.is_dir():
        pytest.skip(f"published anchors not found at {anchors}")
    vtm = load_curve(f"{anchors}/summary_psnr_rgb.json#kodak/compressai/vtm")
    mlic = load_curve(anchors / "mlic" / "kodak" / "mlicplusplus_mse.json")
    assert vtm.name == "VTM" and len(vtm.bpp) == 8
    assert bd_rate(mlic, vtm, "cubic") == pytest.approx(-15.14, abs=0.01)
    vtm_compressai = load_curve(anchors / "compressai" / "kodak" / "vtm.json")
    assert vtm_compressai.bpp == vtm.bpp


def test_baselines_produce_curves(sample_images):
    codecs, notices = available_codecs()
    assert {"jpeg", "webp", "avif", "jpeg2000"} <= {c.name for c in codecs}
    assert len(codecs) + len(notices) == 6
    image = [("crop", sample_images[0][1][:192, :256].copy())]
    for codec in codecs:
        result = evaluate_codec(codec, image, quiet=True)
        bpp, psnr = result["results"]["bpp"], result["results"]["psnr-rgb"]
        assert len(bpp) >= 6 and bpp == sorted(bpp)
        assert psnr[-1] > psnr[0] + 3, codec.name


def test_plot_writes_png_and_svg(tmp_path):
    paths = plot_curves(
        [CURVE, CURVE.scaled_rate(0.8, "cheaper")],
        tmp_path / "rd",
        "test",
        anchors=[CURVE.scaled_rate(1.5, "anchor")],
        max_bpp=0.5,
    )
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and b"<svg" in paths[1].read_bytes()[:400]
    again = plot_curves(
        [CURVE, CURVE.scaled_rate(0.8, "cheaper")],
        tmp_path / "again",
        "test",
        anchors=[CURVE.scaled_rate(1.5, "anchor")],
        max_bpp=0.5,
    )
    assert again[1].read_bytes() == paths[1].read_bytes()  # no timestamp, stable ids: redrawn = same file


def test_plot_cli_rejects_a_bad_zoom(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "any.json"), "-o", str(tmp_path / "rd"), "--max-bpp", "0"]) == 2
    assert "--max-bpp must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_produces_both_tables(tmp_path):
    out = tmp_path / "bench.json"
    result = run_kdic(
        "bench",
        "kdic-tiny",
        "s2c-hybrid-tiny",
        str(WEIGHTS_DIR / "kdic-tiny-vr.safetensors"),  # variable-rate weights: coded at the default quality
        "--size",
        "128x64",
        "--runs",
        "1",
        "--train-batch",
        "1",
        "--train-size",
        "64",
        "--train-steps",
        "1",
        "--json",
        str(out),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| model | params M (paper / all)" in result.stdout and "compute-bound decode s" in result.stdout
    report = json.loads(out.read_text())
    rows = {r["name"]: r for r in report["models"]}
    assert rows["kdic-tiny"]["params_paper"] < rows["s2c-hybrid-tiny"]["params_paper"]
    assert rows["kdic-tiny"]["decode"]["total"] > 0 and rows["kdic-tiny"]["train_samples_per_s"] > 0
    assert np.isfinite(rows["kdic-tiny"]["decode_compute_bound_s"])
    assert rows["kdic-tiny-vr"]["decode"]["total"] > 0 and rows["kdic-tiny-vr"]["train_samples_per_s"] > 0
    classical = {c["name"]: c for c in report["classical"]}  # the same image, beside kdic's rows
    assert {"jpeg", "webp", "jpeg2000"} <= set(classical) and all(c["decode_s"] > 0 for c in classical.values())
    assert "| codec | quality | bpp | PSNR dB | encode s | decode s |" in result.stdout and "| webp |" in result.stdout


def test_cli_bdrate_against_itself(tmp_path, capsys):
    from kdic.cli import main

    path = tmp_path / "curve.json"
    path.write_text(json.dumps({"name": "c", "results": {"bpp": list(CURVE.bpp), "psnr-rgb": list(CURVE.quality)}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["bdrate", str(path), "--anchor", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["bd_rate_pct"] == pytest.approx(0.0, abs=1e-9)


def _split(curve: dict, indices: list[int]) -> dict:
    """The points ``indices`` of a ``kdic eval`` result, as if evaluated alone."""
    per_point = ("lmbda", "weights", "weights_digest")
    meta = {k: [v[i] for i in indices] if k in per_point else v for k, v in curve["meta"].items()}
    results = {k: [v[i] for i in indices] for k, v in curve["results"].items()}
    return {**curve, "results": results, "meta": meta, "per_image": [curve["per_image"][i] for i in indices]}


def test_cli_merge_rebuilds_a_curve_split_by_lmbdas(tmp_path, capsys):
    from kdic.cli import main

    root = Path(__file__).resolve().parents[1] / "results" / "vr"
    whole = json.loads((root / "extended" / "kodak" / "student.json").read_text())
    count = len(whole["results"]["bpp"])
    parts = [_split(whole, list(range(1, count, 2))), _split(whole, list(range(0, count, 2)))]
    paths = [tmp_path / "odd.json", tmp_path / "even.json"]
    for path, part in zip(paths, parts):
        path.write_text(json.dumps(part))
    out = tmp_path / "merged.json"
    assert main(["merge", *map(str, paths), "-o", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["results"] == whole["results"] and merged["meta"]["lmbda"] == whole["meta"]["lmbda"]
    refined = tmp_path / "refined.json"
    refined.write_text((root / "refine" / "kodak" / "student-refine10.json").read_text())
    not_a_result = tmp_path / "other.json"
    not_a_result.write_text(json.dumps({"name": "x", "results": {"bpp": [0.1]}}))
    capsys.readouterr()
    for bad in (refined, not_a_result):
        assert main(["merge", str(paths[0]), str(bad), "-o", str(tmp_path / "bad.json")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("kdic: error: cannot merge") and err.count("\n") == 1
    assert not (tmp_path / "bad.json").exists()
