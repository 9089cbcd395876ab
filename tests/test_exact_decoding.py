"""Formats 3 and 4: entropy parameters from order-independent arithmetic decode identically everywhere.

The fixtures were written on other machines (tests/fixtures/format{3,4}/expected.json name them); here
they must decode to exactly the encoder's latent (the content digest refuses anything else) and to
pixels within one level of the writer's (the synthesis stays float). Separate processes with other
thread counts and instruction sets must write and decode the same files and latents, and a one-ulp
perturbation of every input of the entropy-parameter path must not change a decoded latent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import kdic.entropy.exact as exact
from kdic.bench.machine import runnable_capabilities
from kdic.checkpoint import load
from kdic.codec import decode_bytes, encode_image, read_image, unpack
from kdic.codec.pipeline import latent_size
from kdic.data import sample_image_path
from kdic.entropy.exact import (
    GELU_RANGE,
    GELU_STEPS,
    exact_arithmetic,
    exact_exp,
    exact_gelu,
    exact_log,
    exact_tanh,
    table_gelu,
)
from kdic.entropy.latent import ParameterPath

from .helpers import FIXED_RATE_WEIGHTS

FLOAT_PATH = ParameterPath(exact=False, packed=False)  # formats 1 and 2

FIXTURES = Path(__file__).parent / "fixtures"
EXACT_FORMATS = (3, 4)  # written by scripts/make_exact_fixtures.py on the machines expected.json names
EXPECTED = {
    (version, name): entry
    for version in EXACT_FORMATS
    for name, entry in json.loads((FIXTURES / f"format{version}" / "expected.json").read_text()).items()
    if not name.startswith("_")
}


@pytest.mark.parametrize(("version", "name"), sorted(EXPECTED))
def test_exact_format_fixtures_decode_to_the_encoders_latent_on_this_machine(version, name):
    expected = EXPECTED[version, name]
    data = (FIXTURES / f"format{version}" / f"{name}.kdic").read_bytes()
    assert unpack(data)[0].version == version
    image, _ = decode_bytes(load(FIXED_RATE_WEIGHTS / expected["weights"]), data)  # raises unless the latent is exact
    reference = read_image(FIXTURES / f"format{version}" / f"{name}.png")
    assert image.shape == reference.shape
    assert np.abs(image.astype(np.int16) - reference).max() <= 1


CODE_AND_HASH = """
import hashlib, sys, torch
from kdic.checkpoint import load
from kdic.codec import encode_image, read_image, unpack
from kdic.codec.pipeline import latent_size
from kdic.data import bundled_weights, sample_image_path
torch.set_num_threads(int(sys.argv[1]))
image = read_image(sample_image_path())[:192, :256]
for weights, lmbda in (("student", 0.0134), ("teacher", 0.05)):
    model = load(bundled_weights(weights))
    data = encode_image(model, image, estimate=False, reconstruct=False, lmbda=lmbda)[0]
    y_hat = model.decompress_latent(unpack(data)[1], (1, 96, *latent_size(model, 192, 256)))["y_hat"]
    print(weights, hashlib.sha256(data).hexdigest(), hashlib.sha256(y_hat.numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_files_and_latents_identical_across_threads_and_instruction_sets():
    """Separate processes: 1 and 2 threads, and torch's default, AVX2 and (where the CPU has it) AVX-512
    kernels."""
    capabilities = runnable_capabilities()
    assert capabilities[:2] == ("default", "avx2"), capabilities  # every x86-64 machine kdic supports
    runs = [("default", 1), ("avx2", 2), *((("avx512", 1),) if "avx512" in capabilities else ())]
    outputs = set()
    for capability, threads in runs:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability, "OMP_NUM_THREADS": str(threads)}
        result = subprocess.run(
            [sys.executable, "-c", CODE_AND_HASH, str(threads)], capture_output=True, text=True, env=env, timeout=600
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.add(result.stdout)
    assert len(outputs) == 1, outputs


def _decoded_latent(model, data: bytes, height: int, width: int) -> torch.Tensor:
    return model.decompress_latent(unpack(data)[1], (1, 96, *latent_size(model, height, width)))["y_hat"]


@pytest.mark.parametrize("direction", [float("inf"), -float("inf")])
def test_one_ulp_perturbations_of_the_parameter_path_change_no_latent(monkeypatch, direction):
    """Every operand that enters a reduction of the entropy-parameter path moved by one ulp."""
    model = load(FIXED_RATE_WEIGHTS / "kdic-tiny-q2.safetensors")
    image = read_image(sample_image_path())[:128, :192]
    data = encode_image(model, image, estimate=False, reconstruct=False)[0]
    clean = _decoded_latent(model, data, 128, 192)
    snap = exact.snap
    moved = {"operands": 0}

    def perturbed(t, bits):
        t = t.double()
        moved["operands"] += 1
        return snap(torch.nextafter(t, torch.full_like(t, direction)), bits)

    monkeypatch.setattr(exact, "snap", perturbed)
    assert torch.equal(_decoded_latent(model, data, 128, 192), clean)
    assert moved["operands"] > 50  # the perturbation did reach the convolutions and norms


def test_transcendentals_are_accurate():
    """The exact path's exp/log/tanh/GELU stay within float64 (GELU: its erfc's 1.2e-7) of torch's."""
    x = torch.linspace(-30, 30, 20001, dtype=torch.float64)
    assert ((exact_exp(x) - torch.exp(x)).abs() / torch.exp(x)).max() < 1e-15
    assert (exact_log(x.abs() + 1e-3) - torch.log(x.abs() + 1e-3)).abs().max() < 1e-14
    assert (exact_tanh(x) - torch.tanh(x)).abs().max() < 1e-15
    assert (exact_gelu(x) - torch.nn.functional.gelu(x)).abs().max() < 1e-7


def test_table_gelu_hits_the_exact_table_and_interpolates_between():
    """The exact path's GELU: the table's own values on its grid, within 1e-7 of torch's between grid
    points, x or 0 beyond its range, and the same values whatever the tensor's shape."""
    grid = torch.arange(-GELU_RANGE * GELU_STEPS, GELU_RANGE * GELU_STEPS + 1, dtype=torch.float64) / GELU_STEPS
    assert torch.equal(table_gelu(grid), exact_gelu(grid))
    x = torch.linspace(-12, 12, 40001, dtype=torch.float64)
    assert (table_gelu(x) - torch.nn.functional.gelu(x)).abs().max() < 1e-7
    assert torch.equal(table_gelu(torch.tensor([-9.0, 9.0])), torch.tensor([0.0, 9.0], dtype=torch.float64))
    assert torch.equal(table_gelu(x.view(1, 40001, 1, 1)).flatten(), table_gelu(x))
    assert table_gelu(torch.tensor(0.5)).shape == ()


def test_an_operation_without_an_exact_twin_is_refused():
    with pytest.raises(NotImplementedError, match="no exact implementation"):
        with exact_arithmetic():
            torch.cumsum(torch.ones(4), 0)


@pytest.mark.parametrize("packed", [False, True])
def test_exact_parameters_cost_no_rate(packed):
    """On the sample, formats 3 (unpacked) and 4 (packed) code within 0.5% of the float32 parameters'
    size (formats 1-2), and each decodes its own streams."""
    model = load(FIXED_RATE_WEIGHTS / "kdic-tiny-q3.safetensors")
    image = read_image(sample_image_path())
    y = model.g_a(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    path = ParameterPath(packed=packed)
    coded = model.latent_codec.compress(y, path)
    exact_bytes = sum(map(len, coded["strings"]))
    float_bytes = sum(map(len, model.latent_codec.compress(y, FLOAT_PATH)["strings"]))
    assert abs(exact_bytes / float_bytes - 1) < 0.005
    decoded = model.latent_codec.decompress(coded["strings"], tuple(y.shape), path)
    assert torch.equal(decoded["y_hat"], coded["y_hat"])
