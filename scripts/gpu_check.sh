#!/usr/bin/env bash
# The whole GPU check of issue 6 in one call, sized for an H100 in under 8 minutes:
#   1. eager: SDXL architecture (random weights), 1024x1024, 20 dpmpp_2m/karras steps, CFG 7,
#      bf16, SDPA attention, channels-last UNet; batch 1 and batch 4; checkpoint written once
#      (6.9 GB bf16) and loaded back twice from local disk with the page cache dropped;
#   2. the same with torch.compile on the UNet, batch 1 only (a compile per shape costs minutes).
# Writes the profiles, a log and a verdict against the issue's targets under $OUT (the device
# machine's return folder) or the first argument; prints p50, images/s batched, load time, MFU.
#
# Dry run of the same flow on a CPU with the tiny model (what CI-less sessions can check):
#   GPU_CHECK_DRY=1 scripts/gpu_check.sh /tmp/gpu-check-dry
set -uo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-${OUT:-runs/gpu-check}}
mkdir -p "$DEST"
WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
LOG="$DEST/gpu-check.log"
START=$SECONDS
exec > >(tee "$LOG") 2>&1

if [ "${GPU_CHECK_DRY:-0}" != 1 ] && [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
  # carried wheels (diffusers, pydantic and its needs): the machine has torch and transformers, not these
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_check: installing the carried wheels failed"; exit 3; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python3}

if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then
  COMMON=(--device cpu --model tiny --resolution 64 --steps 4 --threads 1)
  EAGER=(--batch 1,4 --runs 5 --warmup 1 --loads 2)
  COMPILED=(--batch 1 --runs 3 --warmup 1 --loads 1 --compile)
  T1=200; T2=200
else
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  COMMON=(--device cuda --model sdxl --resolution 1024 --steps 20 --dtype bf16)
  EAGER=(--batch 1,4 --runs 8 --warmup 2 --loads 2 --drop-caches)
  COMPILED=(--batch 1 --runs 10 --warmup 3 --loads 1 --drop-caches --compile)
  T1=240; T2=200
fi
"$PY" - <<'PYEOF' || { echo "gpu_check: the Python stack is incomplete"; exit 3; }
import torch, diffusers, transformers, pydantic, pandas
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, available={torch.cuda.is_available()}), "
      f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, pydantic {pydantic.VERSION}")
PYEOF

CAL=("$PY" -m pipeline.calibrate "${COMMON[@]}" --sampler dpmpp_2m --scheduler karras --cfg 7
     --cache-dir "$WORK/ckpt" --out "$WORK/profiles" --quiet)
echo "== eager (elapsed $((SECONDS - START)) s)"
timeout "$T1" "${CAL[@]}" "${EAGER[@]}"; rc1=$?
echo "== torch.compile (elapsed $((SECONDS - START)) s)"
timeout "$T2" "${CAL[@]}" "${COMPILED[@]}"; rc2=$?
echo "== done in $((SECONDS - START)) s (eager rc=$rc1, compiled rc=$rc2; 124 = stage timed out)"

"$PY" scripts/gpu_check_report.py "$WORK/profiles" | tee "$DEST/verdict.txt"
tar czf "$DEST/profiles.tgz" -C "$WORK" profiles 2>/dev/null || true
rm -rf "$WORK"
[ "$rc1" = 0 ] || exit "$rc1"
exit 0
