"""Channel-wise energy of encoder features (the paper's Figs. 4 and 5).

The energy of a channel is the mean of its squared activations over all positions of an image,
averaged over the images. For each of the three encoder stages (block outputs, before stage 3's
latent projection) and for the latent y, channels are sorted by energy and split into eight equal
groups; the share of each group in the total energy shows how strongly a model compacts energy
(Fig. 4). The unsorted per-channel energies show where the energy sits (Fig. 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..codec.pipeline import pad_to_multiple, to_tensor
from ..models import LearnedImageCodec

GROUPS = 8


def features(model: LearnedImageCodec) -> list[str]:
    """The features measured: the output of every encoder stage's blocks, then the latent y."""
    return [f"stage{k}" for k in range(1, len(model.g_a.stages) + 1)] + ["latent"]


@torch.no_grad()
def channel_energy(
    model: LearnedImageCodec, images: list[tuple[str, np.ndarray]], quiet: bool = True
) -> dict[str, np.ndarray]:
    """Mean per-channel energy of each of the model's ``features``, averaged over ``images``."""
    model.eval()
    names = features(model)
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        model.stage(k).blocks.register_forward_hook(lambda _m, _i, out, k=k: captured.__setitem__(f"stage{k}", out))
        for k in range(1, len(names))
    ]
    totals: dict[str, torch.Tensor] = {}
    try:
        for _, image in tqdm(images, desc=model.config.name, disable=quiet, unit="image"):
            captured["latent"] = model.g_a(pad_to_multiple(to_tensor(image), model.padding_multiple))
            for name in names:
                energy = captured[name].double().pow(2).mean(dim=(0, 2, 3))
                totals[name] = totals.get(name, 0) + energy
    finally:
        for hook in hooks:
            hook.remove()
    return {name: (totals[name] / len(images)).numpy() for name in names}


def group_shares(energy: np.ndarray, groups: int = GROUPS) -> list[float]:
    """Share of the total energy in each of ``groups`` equal groups of channels sorted by energy."""
    ordered = np.sort(energy)[::-1]
    return [float(part.sum() / ordered.sum()) for part in np.array_split(ordered, groups)]


def energy_report(name: str, weights: str, energies: dict[str, np.ndarray]) -> dict:
    """JSON-ready summary of one model: per-channel energies, eight-group shares, top-group share."""
    return {
        "name": name,
        "weights": weights,
        "features": {
            feature: {
                "channels": int(e.size),
                "energy": [float(v) for v in e],
                "group_shares": group_shares(e),
                "top_group_share": group_shares(e)[0],
            }
            for feature, e in energies.items()
        },
    }


def plot_energy(reports: list[dict], output: str | Path) -> list[Path]:
    """Fig. 4 (sorted eight-group shares, bars) and Fig. 5 (unsorted per-channel shares, lines)."""
    from .plot import pyplot, save_figure

    shared = [f for f in reports[0]["features"] if all(f in r["features"] for r in reports)]
    written = []
    for kind in ("sorted", "unsorted"):
        fig, axes = pyplot().subplots(1, len(shared), figsize=(4 * len(shared), 3.4), dpi=120, squeeze=False)
        axes = axes[0]
        for i, report in enumerate(reports):
            for ax, feature in zip(axes, shared):
                entry = report["features"][feature]
                if kind == "sorted":
                    width = 0.8 / len(reports)
                    ax.bar(
                        np.arange(GROUPS) + i * width,
                        [100 * s for s in entry["group_shares"]],
                        width,
                        label=report["name"],
                    )
                else:
                    energy = np.asarray(entry["energy"])
                    ax.plot(100 * energy / energy.sum(), marker=".", linewidth=0.8, label=report["name"])
        for ax, feature in zip(axes, shared):
            ax.set_title(f"{feature} ({kind}{f', {GROUPS} groups' if kind == 'sorted' else ''})")
            ax.set_xlabel("channel group (highest energy first)" if kind == "sorted" else "channel index")
            ax.set_ylabel("share of energy (%)")
            ax.grid(True, alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        written += save_figure(fig, Path(f"{output}-{kind}"))
    return written
