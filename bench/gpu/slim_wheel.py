"""Rewrite a wheel without the members edgebench never loads, so that it fits the device call's 64 MiB.

OpenVINO's wheel (59 MB zipped, 184 MB unpacked) carries the GPU and NPU plugins (and the GPU plugin's kernel
cache, ``cache.json``) and the TensorFlow, TensorFlow Lite, PaddlePaddle, JAX and GGUF frontends. edgebench
converts from PyTorch and ONNX and compiles for the CPU (``edgebench/export/openvino.py``), so those go;
OpenVINO lists the plugins it finds at run time, and a frontend that is absent is only unavailable. The
RECORD is rewritten to match. Usage: ``python slim_wheel.py WHEEL`` (in place).
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

DROP = re.compile(
    r"openvino/libs/(libopenvino_intel_(gpu|npu)_plugin\.so|cache\.json"
    r"|libopenvino_(tensorflow|tensorflow_lite|paddle|jax|gguf)_frontend\.so[.\d]*)$"
    r"|openvino/frontend/(tensorflow|paddle|jax)/"
)


def slim(wheel: Path) -> tuple[int, int]:
    """Rewrite ``wheel`` without the members :data:`DROP` matches; return its sizes before and after."""
    before = wheel.stat().st_size
    tmp = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            if DROP.search(info.filename):
                continue
            data = src.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines()
                data = ("\n".join(ln for ln in lines if not DROP.search(ln.split(",")[0])) + "\n").encode()
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(wheel)
    return before, wheel.stat().st_size


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        b, a = slim(Path(arg))
        print(f"{Path(arg).name}: {b / 2**20:.1f} MiB -> {a / 2**20:.1f} MiB")
