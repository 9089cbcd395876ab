"""Print kdic's entropy-coding throughput (encode and decode, symbols/s).

Usage: python scripts/entropy_throughput.py [NUM_SYMBOLS]
"""

import json
import sys

from kdic.bench.coding import coding_throughput

print(json.dumps(coding_throughput(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000), indent=2))
