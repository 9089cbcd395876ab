"""Every preset builds; tiny presets train on a real Kodak crop; stages are addressable and freezable."""

from __future__ import annotations

import math

import pytest
import torch

import kdic
from kdic.models import LearnedImageCodec, available, build_model, get_config

TINY = ("s2c-hybrid-tiny", "kdic-tiny")


@pytest.mark.parametrize("name", [n for n in available() if n not in TINY])
def test_full_size_preset_builds_on_cpu(name):
    model = build_model(name)
    assert isinstance(model, LearnedImageCodec)
    assert model.config == get_config(name)
    assert all(p.device.type == "cpu" and torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("name", TINY)
def test_tiny_forward_backward_on_kodak_crop(name, kodak_sample):
    torch.manual_seed(0)
    model = build_model(name).train()
    x = kodak_sample[..., 128:256, 256:448].repeat(2, 1, 1, 1)  # 2 x 3 x 128 x 192
    out = model(x)
    m = model.config.transform.latent_channels
    assert out["x_hat"].shape == x.shape
    assert out["likelihoods"]["y"].shape == (2, m, 8, 12)
    assert out["likelihoods"]["z"].shape == (2, model.config.entropy.hyper_channels, 2, 3)
    for likelihood in out["likelihoods"].values():
        assert torch.isfinite(likelihood).all() and (likelihood > 0).all() and (likelihood <= 1).all()
    bpp = sum(-likelihood.log2().sum() for likelihood in out["likelihoods"].values()) / (2 * 128 * 192)
    loss = bpp + 0.013 * 255**2 * torch.mean((out["x_hat"] - x) ** 2) + model.aux_loss()
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert no_grad == []
    assert 0 < bpp.item() < 64 and math.isfinite(loss.item())


def test_eval_forward_is_deterministic_and_quantized(kodak_sample):
    model = build_model("kdic-tiny").eval()
    x = kodak_sample[..., :128, :128]
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a["x_hat"], b["x_hat"])
    assert torch.equal(a["likelihoods"]["y"], b["likelihoods"]["y"])


def test_input_size_must_match_padding_multiple(kodak_sample):
    model = build_model("kdic-tiny")
    with pytest.raises(ValueError, match="multiples of 64"):
        model(kodak_sample[..., :100, :128])


def test_six_stages_are_addressable_and_freezable(kodak_sample):
    model = build_model("kdic-tiny")
    t = model.config.transform
    widths = [s.channels for s in t.encoder] + [s.channels for s in t.decoder]
    stage_outputs = model.g_a.forward_stages(kodak_sample[..., :128, :128])
    assert [o.shape[1] for o in stage_outputs] == [widths[0], widths[1], t.latent_channels]
    assert [o.shape[-1] for o in stage_outputs] == [64, 32, 8]
    for k in range(1, 7):
        assert len(model.stage(k).blocks) == t.stages[k - 1].depth
    model.requires_grad_(False)
    model.stage(2).requires_grad_(True)
    trainable = {n.split(".")[0] + "." + n.split(".")[2] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"g_a.1"}
    with pytest.raises(IndexError):
        model.stage(7)


def test_tcm_and_elic_families_run_forward():
    """Full-size families exercise shifted windows, GDN, slices and the plain ELIC context on a small input."""
    torch.manual_seed(0)
    for name in ("tcm-kd", "elic"):
        model = build_model(name).eval()
        with torch.no_grad():
            out = model(torch.rand(1, 3, 128, 128))
        assert out["x_hat"].shape == (1, 3, 128, 128)
        assert torch.isfinite(out["likelihoods"]["y"]).all()


def test_top_level_api():
    assert "kdic" in kdic.available() and "s2c-hybrid" in kdic.available()
