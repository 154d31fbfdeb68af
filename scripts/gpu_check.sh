#!/usr/bin/env bash
# One call on a lent GPU machine: preflight, captured-vs-eager correctness, forward calibration,
# rollout benches (B = 1, 32, 8; exact and dual; graphs off/on; the reference rule side by side)
# and `bench step` (+ memory probe), most valuable first, within a 540 s global deadline.
#
#   bash scripts/gpu_check.sh OUT_DIR            # GPU (LLaDA-8B architecture, random weights)
#   bash scripts/gpu_check.sh OUT_DIR --tiny     # CPU dry run on the tiny model (CI runs this)
#
# Writes OUT_DIR/gpu_check.jsonl (+ rollout.jsonl, step.jsonl) and OUT_DIR/gpu.txt. Needs python3
# with torch, transformers, peft and accelerate; no pytest. The Python side
# (python -m dlrl.bench.gpu_check) time-boxes every phase; `timeout` here is the hard stop.
set -uo pipefail
out=$(realpath -m "${1:?usage: scripts/gpu_check.sh OUT_DIR [--tiny]}")  # before cd: a relative OUT stays valid
shift
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
fi
timeout -k 10 570 "$py" -m dlrl.bench.gpu_check "$out" "$@" 2>&1 | tee "$out/gpu_check.log"
exit "${PIPESTATUS[0]}"
