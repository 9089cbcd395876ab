"""Rewrite src/kdic/data/weights/index.json after changing the shipped weights (a test checks it)."""

import json

from kdic.data import INDEX_PATH, build_weights_index
from kdic.fileio import atomic_write_bytes

if __name__ == "__main__":
    atomic_write_bytes(INDEX_PATH, (json.dumps(build_weights_index(), indent=2) + "\n").encode())
    print(INDEX_PATH)
