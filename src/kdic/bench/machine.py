"""What this CPU can run: the instruction sets torch's kernels can be pinned to.

Exactness is checked by running the codec under each ``ATEN_CPU_CAPABILITY`` in its own process;
torch dies with SIGILL when pinned to an instruction set the CPU lacks (AVX-512 on many AMD and
older Intel parts), so the checks first ask which ones run here.
"""

from __future__ import annotations

import os
import subprocess
import sys

CAPABILITIES = ("default", "avx2", "avx512")  # torch's CPU kernel sets, lowest first
# A whole encode and decode: single kernels can run where the codec's mix does not.
_PROBE = """
import numpy as np, torch
from kdic.codec import decode_bytes, encode_image
from kdic.models import build_model
model = build_model("kdic-tiny").eval()
decode_bytes(model, encode_image(model, np.full((64, 64, 3), 128, np.uint8), estimate=False, reconstruct=False)[0])
"""


def runnable_capabilities() -> tuple[str, ...]:
    """The ``ATEN_CPU_CAPABILITY`` values under which the codec runs here (a child process each)."""
    return tuple(
        capability
        for capability in CAPABILITIES
        if subprocess.run(
            [sys.executable, "-c", _PROBE],
            env={**os.environ, "ATEN_CPU_CAPABILITY": capability},
            capture_output=True,
            timeout=120,
        ).returncode
        == 0
    )
