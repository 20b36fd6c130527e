#!/usr/bin/env bash
# One call on a lent GPU machine (see bench/README.md, "On a GPU"): install the carried wheels offline, the
# project without dependencies (the machine's torch stays), run the GPU tests and bench/bench_gpu.py, and
# write logs and JSON under $OUT. Prepare first, here: bash bench/gpu/prepare_wheels.sh. Then, with the device
# tool, from the checkout it sends:
#   run(command="bash bench/gpu/run_on_device.sh", carry=["bench/gpu/wheels", "bench/gpu/data"], timeout_s=560)
# BUDGET_S (default 480) bounds the whole script; the plan run gets what the other steps leave.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
budget="${BUDGET_S:-480}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
step() { echo "[$SECONDS s] $*" | tee -a "$OUT/steps.log"; }
left() { echo $((budget - SECONDS)); }

step "environment"
{ nvidia-smi; python3 --version
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
  git log -1 --format='commit %h %s' 2>/dev/null || echo "commit: no git here"; } > "$OUT/env.txt" 2>&1

step "wheels (offline, no deps) into /tmp/site"
torch_before="$(python3 -c 'import torch; print(torch.__version__)')"
wheels="${WHEELS:-bench/gpu/wheels}"
if ls "$wheels"/*.whl > /dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$wheels"/*.whl > "$OUT/install.log" 2>&1 || step "wheel install FAILED (install.log)"
else
  step "no bench/gpu/wheels: nncf, openvino, torch-pruning, torchattacks missing (run prepare_wheels.sh, carry it)"
fi
export PYTHONPATH="/tmp/site:$PWD"
step "edgebench, no deps, no index"
python3 -m pip install --no-deps --no-index --no-build-isolation -e . >> "$OUT/install.log" 2>&1 \
  || step "editable install failed (install.log); edgebench imports through PYTHONPATH"
torch_after="$(python3 -c 'import torch; print(torch.__version__)')"
step "torch before $torch_before, after $torch_after"
python3 -c "import edgebench, nncf, openvino, torch_pruning; print('imports ok', edgebench.__file__)" \
  >> "$OUT/install.log" 2>&1 || step "an import failed (install.log)"

export EDGEBENCH_CACHE=/tmp/edgebench-cache EDGEBENCH_CONFIG=/tmp/edgebench-config
[ -d bench/gpu/data ] && export EDGEBENCH_DATA="$PWD/bench/gpu/data"

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
