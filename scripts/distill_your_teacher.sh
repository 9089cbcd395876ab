#!/usr/bin/env bash
# The worked example of docs/distill_your_teacher.md: import the CPU-trained CompressAI teacher,
# distill a half-MACs student with SMoDi and with prune-finetune, evaluate all three on Kodak with
# real bitstreams. Resumable: run it again after an interruption and each step goes on where it
# stopped (a finished step is skipped). STEPS=... overrides the budget (the doc's numbers: 6000).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=../shared
STEPS=${STEPS:-6000}
RUNS=runs/byot
OUT=results/byot
KDIC=(python -m kdic)
mkdir -p "$RUNS" "$OUT"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

teacher=$RUNS/teacher.safetensors
[ -f "$teacher" ] || "${KDIC[@]}" import "$SHARED/conformance/pretrained/mbt2018-mean-N64-M96-lmbda0.013/weights.safetensors" \
    -o "$teacher" --from compressai:mbt2018-mean --lmbda 0.013

for strategy in smodi prune-finetune; do
    run=$RUNS/$strategy
    if [ ! -f "$run/model.safetensors" ]; then
        resume=(); [ -f "$run/checkpoints/state.safetensors" ] && resume=(--resume)
        "${KDIC[@]}" distill --teacher "$teacher" --strategy "$strategy" --data "$SHARED/data/train/bsds500" \
            --run-dir "$run" --steps "$STEPS" --batch-size 8 --crop 128 --lr 5e-4 --decay-at 0.85 \
            --checkpoint-every 250 --quiet "${resume[@]}"
    fi
done

[ -f "$OUT/teacher.json" ] || "${KDIC[@]}" eval --weights "$teacher" --data "$SHARED/data/kodak" -o "$OUT/teacher.json" --name teacher --quiet
for strategy in smodi prune-finetune; do
    [ -f "$OUT/$strategy.json" ] || "${KDIC[@]}" eval --weights "$RUNS/$strategy/model.safetensors" --data "$SHARED/data/kodak" \
        -o "$OUT/$strategy.json" --name "$strategy" --quiet
done
"${KDIC[@]}" bench "$teacher" "$RUNS/smodi/model.safetensors" --size 768x512 --runs 3 --train-steps 0 --threads 1 \
    --json "$OUT/complexity.json" --markdown "$OUT/complexity.md" > /dev/null
