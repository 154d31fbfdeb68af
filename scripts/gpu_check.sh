#!/usr/bin/env bash
# The GPU checks docs/benchmarks.md is waiting for, as one prepared script for a lent GPU machine.
#
#   bash scripts/gpu_check.sh OUT_DIR [PHASE ...]     PHASE ∈ tests rollout lora likelihood (default: all)
#
# Needs python3 with a CUDA torch, transformers, peft and accelerate (TRL, datasets, DeepSpeed and
# math-verify are not imported by these phases). Each phase is time-boxed and tees its output to
# OUT_DIR/PHASE.txt, so a phase that runs out of time still leaves what it printed. The phase
# lengths below are estimates from the reference's H100 timings, not measurements: a 15-minute
# device budget fits "tests rollout" in one call and "lora likelihood" in a second.
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUT_DIR [tests|rollout|lora|likelihood ...]}
shift
phases=${*:-tests rollout lora likelihood}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
llada8b=(--arch llada8b --random-init --dtype bf16 --device cuda --prompt 128 --gen 256 --block 32 --steps 128)

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
"$py" -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'peft', peft.__version__)" | tee -a "$out/gpu.txt"

for phase in $phases; do
  echo "== $phase ($(date -u +%T))"
  case $phase in
    tests)  # captured rollouts equal eager ones (≈1–2 min)
      timeout 240 "$py" -m pytest tests/gpu -q -p no:cacheprovider -rs ;;
    rollout)  # issue #3's targets: engine vs the naive loop at 8B (≈5 min)
      timeout 420 "$py" -m dlrl.bench.rollout "${llada8b[@]}" --batch 1,8,32 --cache none,dual --cuda-graphs ;;
    lora)  # adapter path vs merged weights, r=128 on every projection (≈2 min)
      timeout 240 "$py" -m dlrl.bench.rollout "${llada8b[@]}" --batch 1,8 --cache none --cuda-graphs \
        --lora 128 --no-naive ;;
    likelihood)  # chunked log-probs vs naive at the 126k vocabulary (≈1 min)
      timeout 180 "$py" -m dlrl.bench.likelihood --device cuda --dtype bfloat16 --batch 8 --prompt-len 128 \
        --completion-len 256 ;;
    *) echo "unknown phase $phase (tests rollout lora likelihood)"; false ;;
  esac 2>&1 | tee "$out/$phase.txt"
  echo "== $phase exit ${PIPESTATUS[0]}" | tee -a "$out/$phase.txt"
done
