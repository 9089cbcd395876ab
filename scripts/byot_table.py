#!/usr/bin/env python
"""The table of docs/distill_your_teacher.md from results/byot (after scripts/distill_your_teacher.sh).

RD cost J = bpp + lambda * 255^2 * MSE at the teacher's lambda, with MSE from the mean Kodak PSNR.
"""

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "byot"
LMBDA = 0.013
teacher, student = json.loads((RESULTS / "complexity.json").read_text())["models"]  # as the script benches them
rows = []
for name in ("teacher", "smodi", "prune-finetune"):
    r = json.loads((RESULTS / f"{name}.json").read_text())["results"]
    bpp, psnr = r["bpp"][0], r["psnr-rgb"][0]
    cost = bpp + LMBDA * 255**2 * 10 ** (-psnr / 10)
    rows.append((name, bpp, psnr, r["ms-ssim-rgb"][0], cost, r["decoding_time"][0]))
base = rows[0]
print("| model | Kodak bpp (real) | PSNR dB | MS-SSIM | RD cost J | vs teacher: bpp, PSNR, J | decode s |")
print("|---|---|---|---|---|---|---|")
for name, bpp, psnr, ssim, cost, dec in rows:
    delta = (
        "-"
        if name == "teacher"
        else (f"{100 * (bpp / base[1] - 1):+.1f}%, {psnr - base[2]:+.2f} dB, {100 * (cost / base[4] - 1):+.1f}%")
    )
    print(f"| {name} | {bpp:.4f} | {psnr:.2f} | {ssim:.4f} | {cost:.4f} | {delta} | {dec:.3f} |")
print(
    f"\nstudent / teacher: MACs {student['macs_total_2k'] / teacher['macs_total_2k']:.3f} (all ops), "
    f"{student['macs_paper_2k'] / teacher['macs_paper_2k']:.3f} (paper convention); "
    f"params {student['params_total']:,} / {teacher['params_total']:,}"
)
