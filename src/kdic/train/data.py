"""Training crops streamed from an image folder, a file list or tar shards, with resumable randomness.

Sample ``k`` of rank ``r`` is a pure function of ``(seed, r, k)``: which image, where the crop sits and
which flips. A run's batches therefore depend on nothing but the step, whatever the number of
DataLoader workers, and a resumed run (or a restored parked one) draws exactly the batches an
uninterrupted one would have. Only the list of samples is held in memory, never their pixels, so
memory does not grow with the data set; decoding and cropping happen in the workers.
"""

from __future__ import annotations

import io
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from ..codec.image_io import IMAGE_SUFFIXES
from ..errors import KdicError

LIST_SUFFIXES = (".txt", ".lst")
SHARD_SUFFIX = ".tar"
MAX_DRAWS = 16  # unreadable images skipped in a row before a sample gives up


@dataclass(frozen=True)
class Entry:
    """One training image: a file, or a member of a tar shard (``offset``/``size`` of its bytes)."""

    path: str
    offset: int = -1
    size: int = -1

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            if self.offset < 0:
                return f.read()
            f.seek(self.offset)
            return f.read(self.size)


def _shard_entries(shard: Path) -> list[Entry]:
    """The image members of an uncompressed tar shard (WebDataset style), read in place later."""
    try:
        with tarfile.open(shard, "r:") as tar:
            return [
                Entry(str(shard), m.offset_data, m.size)
                for m in tar.getmembers()
                if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES
            ]
    except (tarfile.TarError, OSError) as exc:
        raise KdicError(f"cannot index tar shard {shard} (an uncompressed .tar is needed): {exc}") from None


def _entries_of(path: Path) -> list[Entry]:
    if path.suffix.lower() == SHARD_SUFFIX:
        return _shard_entries(path)
    return [Entry(str(path))]


def source_entries(data: str | Path) -> list[Entry]:
    """Every training image of ``data``: a folder (images and .tar shards, recursively), a .txt/.lst
    file list (one image or shard per line, relative to the list's folder) or one .tar shard."""
    data = Path(data)
    if data.is_dir():
        paths = sorted(p for p in data.rglob("*") if p.suffix.lower() in (*IMAGE_SUFFIXES, SHARD_SUFFIX))
    elif data.is_file() and data.suffix.lower() in LIST_SUFFIXES:
        lines = [line.strip() for line in data.read_text(errors="replace").splitlines()]
        paths = [data.parent / line for line in lines if line and not line.startswith("#")]
        missing = next((p for p in paths if not p.is_file()), None)
        if missing is not None:
            raise KdicError(f"{data} lists {missing}, which does not exist")
    elif data.is_file() and data.suffix.lower() == SHARD_SUFFIX:
        paths = [data]
    else:
        raise KdicError(f"training data {data} is neither a folder, a .txt/.lst file list nor a .tar shard")
    entries = [entry for path in paths for entry in _entries_of(path)]
    if not entries:
        raise KdicError(f"training data {data} holds no images")
    return entries


def random_crop(image: np.ndarray, crop: int, rng: np.random.Generator) -> np.ndarray:
    """A ``crop``² window with random flips; an image smaller than the crop is first scaled up
    (bicubic) until its short side fits, rather than dropped or padded with a synthetic border."""
    height, width = image.shape[:2]
    if min(height, width) < crop:
        scale = crop / min(height, width)
        size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        height, width = image.shape[:2]
    top = int(rng.integers(height - crop + 1))
    left = int(rng.integers(width - crop + 1))
    window = image[top : top + crop, left : left + crop]
    if rng.integers(2):
        window = window[:, ::-1]
    if rng.integers(2):
        window = window[::-1]
    return window


class CropDataset(Dataset):
    """Random training crops; item ``k`` is the ``k``-th sample of this rank's stream (uint8, CHW).

    Each DDP rank reads its own shard of the images (every ``world_size``-th entry; all of them when
    there are fewer images than ranks) and draws its own stream (the rank is in the seed). An unreadable
    image is reported once and replaced by another draw from the same sample's generator.
    """

    def __init__(self, data: str | Path, crop: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        entries = source_entries(data)
        self.entries = entries[rank::world_size] if len(entries) >= world_size else entries  # tiny sets: shared
        self.crop, self.seed, self.rank = crop, seed, rank
        self._reported: set[int] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def _decode(self, index: int) -> np.ndarray | None:
        entry = self.entries[index]
        try:
            with Image.open(io.BytesIO(entry.read())) as img:
                return np.asarray(img.convert("RGB"), dtype=np.uint8)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            if index not in self._reported:
                self._reported.add(index)
                where = entry.path if entry.offset < 0 else f"{entry.path} at byte {entry.offset}"
                print(f"kdic: warning: skipping unreadable training image {where}: {exc}", file=sys.stderr)
            return None

    def __getitem__(self, sample: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, self.rank, sample])
        for _ in range(MAX_DRAWS):
            image = self._decode(int(rng.integers(len(self.entries))))
            if image is not None:
                return torch.from_numpy(random_crop(image, self.crop, rng).copy()).permute(2, 0, 1)
        raise KdicError(f"{MAX_DRAWS} training images in a row could not be read; is the data set damaged?")


class _StepBatches(torch.utils.data.Sampler):
    """Sample indices of steps ``first .. last - 1``, ``batch_size`` per step (step s = samples s*B ...)."""

    def __init__(self, first: int, last: int, batch_size: int) -> None:
        self.first, self.last, self.batch_size = first, last, batch_size

    def __len__(self) -> int:
        return self.last - self.first

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.first, self.last):
            yield list(range(step * self.batch_size, (step + 1) * self.batch_size))


def batches(
    dataset: CropDataset,
    batch_size: int,
    first: int,
    last: int,
    workers: int = 0,
    device: torch.device = torch.device("cpu"),
) -> Iterator[torch.Tensor]:
    """Float batches in [0, 1] of (micro-)steps ``first .. last - 1``, decoded by ``workers`` processes."""
    loader = DataLoader(
        dataset,
        batch_sampler=_StepBatches(first, last, batch_size),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        generator=torch.Generator(),
    )  # its own: the loader must not draw from the noise RNG
    for batch in loader:
        yield batch.to(device, non_blocking=True).float().div_(255)
