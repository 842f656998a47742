#!/usr/bin/env bash
# The GPU checks of attnlab in one run, most important first, each step under its own time limit:
#   1. the Triton FlashAttention kernels, compiled: their tests and `attnlab bench flash`;
#   2. `attnlab bench gpt`: training step against nanoGPT's model, KV-cached generation (CUDA graphs);
#   3. the device-parametrized equivalence suite on CUDA (the `[cuda]` instances of the core tests);
#   4. every experiment's quick profile on CUDA (`attnlab report --device cuda`);
#   5. seq2seq training and sampling on CUDA.
# Usage: scripts/gpu_check.sh [OUT_DIR]  (default runs/gpu). Logs, JSON and a summary go to OUT_DIR; the last lines
# printed are the summary. It uses the machine's own python3 (torch, triton) and this checkout's src/.
# BUDGET (seconds, default 560) caps the whole run: one device call may run 600 s, so each step's limit is cut
# to what is left, and a step with under 20 s left is skipped (its summary line says so).
set -u
OUT=${1:-${OUT:-runs/gpu}}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
SUMMARY="$OUT/summary.txt"
BUDGET=${BUDGET:-560}
DEADLINE=$(($(date +%s) + BUDGET))
: >"$SUMMARY"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.log, one summary line
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  if ((DEADLINE - start < 20)); then
    printf '%-14s skipped: the budget of %ss is spent\n' "$name" "$BUDGET" | tee -a "$SUMMARY"
    return
  fi
  ((limit > DEADLINE - start)) && limit=$((DEADLINE - start))
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  rc=$?
  printf '%-14s rc=%-3s %4ss  %s\n' "$name" "$rc" "$(($(date +%s) - start))" "$(tail -n 1 "$OUT/$name.log" | cut -c1-150)" |
    tee -a "$SUMMARY"
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
  $PY -c "import torch, triton, numpy; print('torch', torch.__version__, 'triton', triton.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

FLASH_TESTS="tests/functional/test_flash_triton.py tests/bench/test_flash_bench.py"
# The device-parametrized equivalence tests ([cuda-...] ids) and the other modules' CUDA instances.
CUDA_SUITE="${CUDA_SUITE:-tests/nn tests/functional tests/models}"

step flash-tests 240 $PY -m pytest -q -x -p no:cacheprovider $FLASH_TESTS
step bench-flash 240 $PY -m attnlab bench flash --device cuda --out "$OUT/bench"
step bench-gpt 150 $PY -m attnlab bench gpt --device cuda --out "$OUT/bench"
step cuda-suite 420 $PY -m pytest -q -p no:cacheprovider -k cuda --maxfail=40 --durations=15 \
  --ignore=tests/functional/test_flash_triton.py $CUDA_SUITE
step report 360 $PY -m attnlab report --device cuda --out "$OUT/report"
step seq2seq 120 bash -c "$PY -m attnlab train seq2seq --task reverse --train.device cuda --out '$OUT/s2s' && $PY -m attnlab sample '$OUT/s2s' --prompt '3 1 4 1 5 9 2'"

tar czf "$OUT/logs.tgz" -C "$OUT" --exclude logs.tgz . 2>/dev/null
echo "--- summary"
cat "$SUMMARY"
