"""Print the median training-step time of presets at batch 8 x 128x128 (docs/model_zoo.md).

Usage: python scripts/train_step_time.py [PRESET ...]   (default: the two tiny presets)
"""

import sys

import torch

from kdic.bench.throughput import training_step_seconds
from kdic.models import build_model

names = sys.argv[1:] or ["s2c-hybrid-tiny", "kdic-tiny"]
print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 8 x 3 x 128 x 128")
for name in names:
    torch.manual_seed(0)
    print(f"{name:18s} {training_step_seconds(build_model(name)):.3f} s/step", flush=True)
