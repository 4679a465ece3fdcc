#!/usr/bin/env bash
# The whole GPU check of issue 6 in one call, sized for an H100 in under 8 minutes:
#   1. eager: SDXL architecture (random weights), 1024x1024, 20 dpmpp_2m/karras steps, CFG 7,
#      bf16, SDPA attention with fused QKV projections, channels-last UNet, cuDNN benchmark;
#      batch 1 and batch 4; checkpoint written once (6.9 GB bf16) and loaded back twice from
#      local disk with the page cache dropped (parallel reads straight to the GPU), then the
#      disk's one-stream cold read rate for comparison;
#   2. the same with torch.compile (static shapes) on the UNet and the VAE decoder, batch 1;
#   3. the same, batch 4 (a process and a time budget of its own: a compile per shape costs minutes);
#      not in the default stages on the device machine: GPU_CHECK_STAGES=compiled4 in a second call;
#   4. loadbench: the checkpoint loaded cold with several readers (threads, chunk size, O_DIRECT),
#      step by step, and the disk's one-stream O_DIRECT rate; runs on what time the call has left;
#   5. kernels: one batch-4 run profiled, device time and achieved TFLOP/s by kind of work
#      (convolution, matmul, attention, norm, other), eager then compiled, on what time is left;
#   6. compiletime: each repeated block shape of the UNet compiled on its own (comfyfab bench compile):
#      the compile's cost per block and whether blocks of one shape share their code, with and
#      without FP8 as GPU_CHECK_FP8 says; a minute or two;
#   0. attention (runs first when picked): each SDPA kernel timed on SDXL's attention shapes in
#      seconds (comfyfab bench attention); GPU_CHECK_ATTENTION=best then hands the fastest to the
#      calibrations.
# Variants of the calibrations: GPU_CHECK_FP8=1 (the UNet's transformer projections in FP8, the default
# recipe: comfyfab's torch._scaled_mm modules, each input row scaled at run time; "static": the same with
# one input scale per layer fixed by a calibration run; "torchao": torchao's float8, carry its wheel;
# "both": each calibration stage runs with the default FP8, then without, on one checkpoint),
# GPU_CHECK_COMPILE=full|regional (torch.compile of whole models, or of their repeated blocks: a
# fraction of the compile time), GPU_CHECK_ATTENTION=auto|cudnn|flash|efficient|math|best,
# GPU_CHECK_BATCH (compiled4's batch sizes, default 4; e.g. 4,8), GPU_CHECK_COMPILED_S (compiled4's
# limit per variant, default 400 s). Every stage's time limit is capped by what the call's budget has left.
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
  COMPILED=(--runs 3 --warmup 1 --loads 1 --compile "${GPU_CHECK_COMPILE:-full}")
  LOADBENCH=(--device cpu --model tiny --readers library,2x1,2x1d --loads 2)
  KERNELS=(--device cpu --model tiny --resolution 64 --steps 4 --warmup 1)
  COMPILETIME=(--device cpu --model tiny --resolution 64)
  T1=200; T2=200; T3=200; T4=120
else
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  COMMON=(--device cuda --model sdxl --resolution 1024 --steps 20 --dtype bf16)
  EAGER=(--batch 1,4 --runs 6 --warmup 2 --loads 2 --drop-caches)
  COMPILED=(--runs 8 --warmup 3 --loads 1 --drop-caches --compile "${GPU_CHECK_COMPILE:-full}")
  # measured 2026-11-27: eager stage 114 s; one process compiling batch 1 then batch 4 ran out of
  # its 290 s after finishing batch 1: so each compiled batch size is a stage with its own budget,
  # and all three stages (up to 12 min) do not fit one device call: run compiled4 in a call of its own
  T1=160; T2=300; T3=${GPU_CHECK_COMPILED_S:-400}  # compiled4 runs alone: it writes the checkpoint, loads, then compiles batch 4
  # GPU_CHECK_READERS: other readers than the benchmark's default list
  LOADBENCH=(--device cuda --model sdxl --dtype bf16 ${GPU_CHECK_READERS:+--readers "$GPU_CHECK_READERS"}
             --loads "${GPU_CHECK_LOADS:-2}" --drop-caches)
  T4=${GPU_CHECK_LOADBENCH_S:-150}
  KERNELS=(--device cuda --model sdxl --resolution 1024 --steps 20 --dtype bf16 --warmup 2)
  COMPILETIME=(--device cuda --model sdxl --resolution 1024 --dtype bf16)
fi
KERNEL_BATCH=${GPU_CHECK_KERNEL_BATCH:-4}
BATCH=${GPU_CHECK_BATCH:-4}
ATTENTION=${GPU_CHECK_ATTENTION:-auto}
# the whole call's budget (the device call's own limit is a little above it); later stages get what is left
BUDGET=${GPU_CHECK_BUDGET:-560}
# a stage's time limit: its own, or what the budget has left after the report (25 s) if that is less
cap() { local t=$1 left=$((BUDGET - (SECONDS - START) - 25)); [ "$left" -lt "$t" ] && t=$left; [ "$t" -lt 1 ] && t=1; echo "$t"; }
"$PY" - <<'PYEOF' || { echo "gpu_check: the Python stack is incomplete"; exit 3; }
import torch, diffusers, transformers, pydantic, pandas
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, available={torch.cuda.is_available()}), "
      f"diffusers {diffusers.__version__}, transformers {transformers.__version__}, pydantic {pydantic.VERSION}")
PYEOF
case "${GPU_CHECK_FP8:-0}" in 0) RECIPE="" ;; torchao|static) RECIPE=$GPU_CHECK_FP8 ;; *) RECIPE=scaled-mm ;; esac
if [ -n "$RECIPE" ]; then
  # one FP8 layer end to end first: without it the calibrations fall back to the model's dtype
  FP8_RECIPE=$RECIPE "$PY" - <<'PYEOF' \
    || { echo "gpu_check: FP8 unavailable, calibrating without --fp8"; GPU_CHECK_FP8=0; }
import os
import torch
from pipeline.comfy.models import Fp8Linear
layer = torch.nn.Linear(256, 512, device="cuda", dtype=torch.bfloat16)
x = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16)
want = layer(x)
if os.environ["FP8_RECIPE"] == "torchao":
    from importlib.metadata import version
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_
    quantize_(layer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))
    name = f"torchao {version('torchao')}, {type(layer.weight).__name__}"
elif os.environ["FP8_RECIPE"] == "static":
    layer, name = Fp8Linear(layer, input_amax=float(x.abs().amax())), "static, Fp8Linear"
else:
    layer, name = Fp8Linear(layer), "scaled-mm, Fp8Linear"
got = layer(x)
err = ((got - want).norm() / want.norm()).item()
print(f"FP8 layer ({name}): relative error {err:.4f}")
assert err < 0.1, err
PYEOF
fi

CAL=("$PY" -m pipeline.calibrate "${COMMON[@]}" --sampler dpmpp_2m --scheduler karras --cfg 7
     --cache-dir "$WORK/ckpt" --out "$WORK/profiles" --quiet)
# GPU_CHECK_STAGES picks stages: attention, eager, compiled1, compiled4, loadbench, kernels, compiletime (default "eager compiled1"; on the
# device machine, "compiled4" needs a call of its own, see above)
if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then DEFAULT_STAGES="attention eager compiled1 compiled4 loadbench kernels compiletime"; else DEFAULT_STAGES="eager compiled1"; fi
STAGES=" ${GPU_CHECK_STAGES:-$DEFAULT_STAGES} "
# what finished is packed after every stage, so a call stopped at its limit still returns it
pack() { tar czf "$DEST/profiles.tgz" -C "$WORK" profiles 2>/dev/null || true; }
rc0=0; rc1=0; rc2=0; rc3=0; rc4=0; rc5=0; rc6=0
if [[ $STAGES == *" attention "* ]]; then
  echo "== SDPA kernels on the attention shapes, batch ${BATCH%%,*} (elapsed $((SECONDS - START)) s)"
  if [ "${GPU_CHECK_DRY:-0}" = 1 ]; then ATT=(--device cpu --model tiny --resolution 64 --reps 3)
  else ATT=(--device cuda --model sdxl --resolution 1024 --dtype bf16); fi
  timeout "$(cap 120)" "$PY" -m pipeline.calibrate.attention "${ATT[@]}" --batch "${BATCH%%,*}" \
    --csv "$DEST/attention.csv"; rc0=$?
fi
if [ "$ATTENTION" = best ]; then
  # the kernel with the least UNet attention time per run, of those that ran every shape
  ATTENTION=$("$PY" - "$DEST/attention.csv" <<'PYEOF' 2>/dev/null || echo auto
import sys
import pandas as pd
rows = pd.read_csv(sys.argv[1])
unet = rows[rows.component == "unet"].assign(t=lambda f: f.seconds * f["count"])
whole = unet.groupby("kernel").filter(lambda g: g.seconds.notna().all()).groupby("kernel").t.sum()
print(whole.idxmin())
PYEOF
)
  echo "== attention kernel for the calibrations: $ATTENTION"
fi
VARIANT=(--attention "$ATTENTION")
# the calibration stages run once per FP8 setting: "both" is FP8 then the model's dtype (an A/B on one checkpoint)
# (GPU_CHECK_FP8 is 0 here when the one-layer check above failed)
case "${GPU_CHECK_FP8:-0}" in 0) FP8S=("") ;; both) FP8S=("--fp8 $RECIPE" "") ;; *) FP8S=("--fp8 $RECIPE") ;; esac
# FP8's compile has run out of every budget so far: log each recompile dynamo makes (one line each), so
# a stage that times out still says whether the blocks share their code
[ "${GPU_CHECK_FP8:-0}" != 0 ] && export TORCH_LOGS="${TORCH_LOGS:-recompiles}"
if [[ $STAGES == *" eager "* ]]; then
  echo "== eager (elapsed $((SECONDS - START)) s)"
  for fp8 in "${FP8S[@]}"; do
    timeout "$(cap "$T1")" "${CAL[@]}" "${EAGER[@]}" "${VARIANT[@]}" $fp8 || rc1=$?; pack
  done
fi
# the disk's own cold read rate, one stream, for comparison with the load times: cold_read LABEL DD_ARGS...
cold_read() {
  local label=$1 ckpt; shift
  ckpt=$(ls "$WORK"/ckpt/*.safetensors 2>/dev/null | head -1)
  [ -n "$ckpt" ] && [ "${GPU_CHECK_DRY:-0}" != 1 ] || return 0
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null
  echo "== $label of $(basename "$ckpt"): $(timeout 30 dd if="$ckpt" of=/dev/null "$@" 2>&1 | tail -1)"
}
cold_read "one-stream cold read" bs=16M
if [[ $STAGES == *" compiled1 "* ]]; then
  echo "== torch.compile, batch 1 (elapsed $((SECONDS - START)) s)"
  for fp8 in "${FP8S[@]}"; do
    timeout "$(cap "$T2")" "${CAL[@]}" "${COMPILED[@]}" "${VARIANT[@]}" $fp8 --batch 1 || rc2=$?; pack
  done
fi
if [[ $STAGES == *" compiled4 "* ]]; then
  for fp8 in "${FP8S[@]}"; do
    echo "== torch.compile (${GPU_CHECK_COMPILE:-full}), batch $BATCH ${VARIANT[*]} $fp8 (elapsed $((SECONDS - START)) s)"
    timeout "$(cap "$T3")" "${CAL[@]}" "${COMPILED[@]}" "${VARIANT[@]}" $fp8 --batch "$BATCH" || rc3=$?; pack
  done
fi
if [[ $STAGES == *" loadbench "* ]]; then
  left=$((BUDGET - (SECONDS - START) - 25))  # the report and the packing after it
  [ "$left" -lt "$T4" ] && T4=$left
  if [ "$T4" -ge 45 ]; then
    echo "== cold loads by reader, $T4 s budget (elapsed $((SECONDS - START)) s)"
    timeout "$T4" "$PY" -m pipeline.calibrate.loadbench "${LOADBENCH[@]}" --cache-dir "$WORK/ckpt" \
      --csv "$DEST/loadbench.csv"; rc4=$?
    [ $((BUDGET - (SECONDS - START))) -gt 40 ] && cold_read "one-stream O_DIRECT read" bs=64M iflag=direct
  else
    echo "== cold loads by reader: skipped, $left s left"; rc4=124
  fi
fi
if [[ $STAGES == *" kernels "* ]]; then
  # where a batched run's device time goes, by kind of work: eager first (a minute), then compiled
  # on what is left (a compile costs 2-3 minutes); each prints as soon as it ends
  for mode in ${GPU_CHECK_KERNEL_MODES:-eager compiled}; do
    left=$((BUDGET - (SECONDS - START) - 20))
    if [ "$left" -lt 40 ]; then echo "== kernels ($mode): skipped, $left s left"; rc5=124; break; fi
    echo "== kernels, batch ${KERNEL_BATCH}, $mode, $left s budget (elapsed $((SECONDS - START)) s)"
    timeout "$left" "$PY" -m pipeline.calibrate.kernels "${KERNELS[@]}" "${VARIANT[@]}" ${FP8S[0]} \
      --batch "$KERNEL_BATCH" --csv "$DEST/kernels-$mode${FP8S[0]:+-fp8-$RECIPE}.csv" \
      $([ "$mode" = compiled ] && echo --compile "${GPU_CHECK_COMPILE:-full}"); rc5=$?
  done
fi
if [[ $STAGES == *" compiletime "* ]]; then
  for fp8 in "${FP8S[@]}"; do
    echo "== compile per block shape, batch ${KERNEL_BATCH} $fp8 (elapsed $((SECONDS - START)) s)"
    timeout "$(cap 240)" "$PY" -m pipeline.calibrate.compiletime "${COMPILETIME[@]}" $fp8 --batch "$KERNEL_BATCH" \
      --csv "$DEST/compile${fp8:+-fp8-$RECIPE}.csv" || rc6=$?
  done
fi
echo "== done in $((SECONDS - START)) s (attention rc=$rc0, eager rc=$rc1, compiled b1 rc=$rc2, b4 rc=$rc3, loadbench rc=$rc4, kernels rc=$rc5, compiletime rc=$rc6; 124 = timed out)"

"$PY" scripts/gpu_check_report.py "$WORK/profiles" $([ -s "$DEST/loadbench.csv" ] && echo "$DEST/loadbench.csv") \
  | tee "$DEST/verdict.txt"
pack
rm -rf "$WORK"
for rc in $rc0 $rc1 $rc2 $rc3 $rc4 $rc5 $rc6; do [ "$rc" = 0 ] || exit "$rc"; done
exit 0
