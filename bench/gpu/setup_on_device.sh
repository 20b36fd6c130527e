# Sourced by the scripts that run on a lent GPU machine (run_on_device.sh, reproductions_on_device.sh): into the
# repository root, $OUT, the step log, the carried wheels installed offline into /tmp/site (the machine's torch
# stays), edgebench without dependencies, the cache and config in /tmp, and EDGEBENCH_DATA at the carried data.
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

