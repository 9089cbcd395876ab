"""The console script: zoo report and clean one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

from kdic.cli import main


def test_models_json_has_paper_columns(capsys):
    assert main(["models", "kdic", "tcm-l", "--json", "--quiet"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["kdic"]["paper_params_m"] == 47.61
    assert abs(rows["tcm-l"]["macs_deviation_pct"]) < 1


def test_models_table_through_the_entry_point():
    result = subprocess.run([sys.executable, "-m", "kdic", "models", "s2c-hybrid", "--quiet"],
                            capture_output=True, text=True, check=True)
    assert "| s2c-hybrid | 79.60 | 79.71 | 4.171 |" in result.stdout


def test_bad_input_gives_one_line_and_nonzero_exit(tmp_path):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not weights")
    for args in (["info", str(bad)], ["models", "no-such-model", "--quiet"]):
        result = subprocess.run([sys.executable, "-m", "kdic", *args], capture_output=True, text=True)
        assert result.returncode == 2
        assert result.stderr.startswith("kdic: error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_info_prints_weights_metadata(tmp_path, capsys):
    import kdic

    path = kdic.save(kdic.build_model("kdic-tiny"), tmp_path / "w.safetensors", lmbda=0.013)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kdic-tiny" in out and "0.013" in out
