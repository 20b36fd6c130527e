#!/usr/bin/env bash
# Prepare, here (where pip reaches PyPI), what the lent GPU machine lacks for bench/gpu/run_on_device.sh:
#   bench/gpu/wheels/  nncf, openvino (slimmed: slim_wheel.py), openvino-telemetry, torch-pruning, torchattacks,
#                      pydot: wheels for CPython $PYVER (default 3.12, the machine's), x86-64, no dependencies
#   bench/gpu/data/    the MNIST files the hashnet plan reads (copied from an EDGEBENCH_DATA folder)
# Both folders are ignored by git (bench/gpu/.gitignore); name them in the device call's `carry`.
# The machine already has torch 2.11 + CUDA, onnx, onnxruntime, numpy, scipy, scikit-learn, matplotlib, psutil,
# tqdm, networkx, ninja, packaging, rich, tabulate, safetensors, pyparsing, requests, torchvision
# (/work/.library/device/KINDS.md) and no package index. Run from the repository root:
#
#   bash bench/gpu/prepare_wheels.sh [EDGEBENCH_DATA folder, default $EDGEBENCH_DATA or ../shared/data]
#
# Versions are those the CPU suite runs with here; keep one version of each (two stop the offline install).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
pyver="${PYVER:-3.12}"
wheels="${WHEELS:-$here/wheels}"
mkdir -p "$wheels"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$wheels" \
  nncf==3.4.0 openvino==2026.4.1 openvino-telemetry==2025.2.0 torch-pruning==1.6.1 torchattacks==3.5.1 \
  pydot==3.0.4
for w in "$wheels"/openvino-2026*.whl; do python3 "$here/slim_wheel.py" "$w"; done
data="${1:-${EDGEBENCH_DATA:-$here/../../../shared/data}}"
if [ -d "$data/mnist" ]; then
  mkdir -p "$here/data/mnist" && cp "$data"/mnist/*.gz "$here/data/mnist/"
else
  echo "no $data/mnist: without it the plan part of bench_gpu.py fails there (no network to download it)" >&2
fi
du -sh "$wheels" "$here/data" 2>/dev/null || true
