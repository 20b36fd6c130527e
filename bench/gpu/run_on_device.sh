#!/usr/bin/env bash
# One call on a lent GPU machine (see bench/README.md, "On a GPU"): install the carried wheels offline, the
# project without dependencies (the machine's torch stays), run the GPU tests and bench/bench_gpu.py, and
# write logs and JSON under $OUT. Prepare first, here: bash bench/gpu/prepare_wheels.sh. Then, with the device
# tool, from the checkout it sends:
#   run(command="bash bench/gpu/run_on_device.sh", carry=["bench/gpu/wheels", "bench/gpu/data"], timeout_s=560)
# BUDGET_S (default 480) bounds the whole script; the plan run gets what the other steps leave.
. "$(dirname "$0")/setup_on_device.sh"

step "pytest -m gpu tests/gpu"
timeout 180 python3 -m pytest -m gpu tests/gpu -p no:randomly -q -rs -o cache_dir=/tmp/pytest-cache \
  > "$OUT/pytest-gpu.log" 2>&1
step "pytest exit $? ($(tail -1 "$OUT/pytest-gpu.log"))"

plan_s=$(( $(left) - 150 ))
step "bench_gpu.py (the plan gets ${plan_s} s after PGD and training)"
skip=""; [ "$plan_s" -lt 60 ] && skip="--skip-plan"
timeout $(( $(left) - 10 )) python3 bench/bench_gpu.py --out "$OUT/bench_gpu.json" --plan-timeout "$plan_s" $skip \
  > "$OUT/bench_gpu.log" 2>&1
step "bench_gpu exit $?"
ls -la "$OUT" >> "$OUT/steps.log"
