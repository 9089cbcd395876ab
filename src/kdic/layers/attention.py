"""Window multi-head self-attention shared by the S2C-Attention and TCM (Swin) blocks."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _window_partition(x: Tensor, window: int) -> Tensor:
    """(B, H, W, C) -> (B * nW, window*window, C)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def _window_merge(windows: Tensor, window: int, b: int, h: int, w: int) -> Tensor:
    """Inverse of ``_window_partition``."""
    c = windows.shape[-1]
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def _shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> Tensor:
    """Additive mask that stops shifted windows from attending across the wrap-around seam."""
    region = torch.zeros(1, h, w, 1, device=device)
    label = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            region[:, hs, ws, :] = label
            label += 1
    ids = _window_partition(region, window).squeeze(-1)
    diff = ids[:, None, :] - ids[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


@functools.cache
def _relative_index(window: int) -> Tensor:
    """(T, T) index of each token pair's relative offset into the bias table. Built on the CPU even
    under ``torch.device("meta")`` (the checkpoint check builds models there), where torch.stack would
    import its whole reference-op stack: 1.6 s of every command's start-up."""
    steps = torch.arange(window, device="cpu")
    coords = torch.stack(torch.meshgrid(steps, steps, indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


class WindowAttention(nn.Module):
    """Non-overlapping window MHSA with a learned relative-position bias.

    Works on channels-last tensors (B, H, W, C). Inputs whose size is not a multiple of the
    window are zero-padded and cropped back, so any image size runs. ``shift > 0`` gives Swin's
    shifted-window variant (cyclic shift plus mask).
    """

    relative_index: Tensor  # a buffer

    def __init__(self, dim: int, heads: int, window: int = 8, shift: int = 0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by {heads} heads")
        self.heads, self.window, self.shift = heads, window, shift
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.relative_position_bias, std=0.02)
        self.register_buffer("relative_index", _relative_index(window).clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        win = self.window
        pad_h, pad_w = (-h) % win, (-w) % win
        if pad_h or pad_w:
            x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        shift = self.shift if min(hp, wp) > win else 0
        if shift:
            x = torch.roll(x, shifts=(-shift, -shift), dims=(1, 2))
        windows = _window_partition(x, win)
        n_windows, tokens = windows.shape[0], windows.shape[1]
        qkv = self.qkv(windows).view(n_windows, tokens, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        bias = self.relative_position_bias[self.relative_index.reshape(-1)]
        attn = attn + bias.view(tokens, tokens, -1).permute(2, 0, 1)
        if shift:
            mask = _shift_mask(hp, wp, win, shift, x.device)
            attn = attn.view(b, -1, self.heads, tokens, tokens) + mask[None, :, None]
            attn = attn.view(n_windows, self.heads, tokens, tokens)
        out = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(n_windows, tokens, c)
        x = _window_merge(self.proj(out), win, b, hp, wp)
        if shift:
            x = torch.roll(x, shifts=(shift, shift), dims=(1, 2))
        return x[:, :h, :w, :]
