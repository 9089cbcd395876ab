"""Training crops from image folders and validation images, with explicit, resumable randomness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..codec.image_io import IMAGE_SUFFIXES, read_image
from ..errors import KdicError

TRAIN_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".ppm")


def list_images(folder: str | Path, recursive: bool = True) -> list[Path]:
    """Image files in ``folder`` (sorted, so every process sees the same order)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KdicError(f"data folder {folder} does not exist")
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in TRAIN_SUFFIXES + IMAGE_SUFFIXES)
    if not files:
        raise KdicError(f"data folder {folder} holds no images")
    return files


class CropSampler:
    """Random crops with horizontal/vertical flips from images preloaded as uint8 tensors.

    All randomness comes from one ``torch.Generator`` whose state is saved in checkpoints, so a
    resumed run draws exactly the batches the uninterrupted run would have drawn. Each DDP rank
    seeds its own generator (``seed + rank``).
    """

    def __init__(self, folder: str | Path, crop: int, seed: int = 0, rank: int = 0) -> None:
        self.crop = crop
        self.images: list[torch.Tensor] = []
        for path in list_images(folder):
            with Image.open(path) as img:
                array = np.asarray(img.convert("RGB"), dtype=np.uint8)
            if min(array.shape[:2]) >= crop:
                self.images.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
        if not self.images:
            raise KdicError(f"no image in {folder} is at least {crop}x{crop} pixels")
        self.generator = torch.Generator().manual_seed(seed + rank)

    def _randint(self, high: int) -> int:
        return int(torch.randint(0, high, (1,), generator=self.generator))

    def batch(self, size: int) -> torch.Tensor:
        """(size, 3, crop, crop) float batch in [0, 1]."""
        crops = []
        for _ in range(size):
            image = self.images[self._randint(len(self.images))]
            top = self._randint(image.shape[1] - self.crop + 1)
            left = self._randint(image.shape[2] - self.crop + 1)
            crop = image[:, top: top + self.crop, left: left + self.crop]
            if self._randint(2):
                crop = crop.flip(2)
            if self._randint(2):
                crop = crop.flip(1)
            crops.append(crop)
        return torch.stack(crops).float().div_(255)

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


def load_validation(folder: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) pairs of the first ``limit`` images of a folder (e.g. Kodak)."""
    files = list_images(folder, recursive=False)[:limit]
    return [(p.name, read_image(p)) for p in files]
