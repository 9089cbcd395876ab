"""Rewrite src/kdic/data/weights/index.json after changing the shipped weights (a test checks it)."""

import json

from kdic.data import INDEX_NAME, WEIGHTS_DIR, build_weights_index
from kdic.fileio import atomic_write_bytes

if __name__ == "__main__":
    atomic_write_bytes(WEIGHTS_DIR / INDEX_NAME, (json.dumps(build_weights_index(), indent=2) + "\n").encode())
    print(WEIGHTS_DIR / INDEX_NAME)
