"""OpenVINO backend. Torch-free; imports ``openvino`` only when instantiated.

Reads an OpenVINO IR (``model.xml`` with ``model.bin`` beside it) or an ``.onnx`` file, compiles it for one
device with the target's options, and reports what the plugin actually chose (streams, threads and the
inference precision: on CPUs with AMX or avx512_bf16 the CPU plugin's default is bf16, not f32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ArtifactError, ConfigError, DeviceError
from edgebench.runtime import BACKENDS
from edgebench.runtime.base import Backend, output_index

log = logging.getLogger(__name__)

_HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
_PRECISIONS = ("f32", "bf16", "f16")
_VIRTUAL = ("AUTO", "MULTI", "HETERO", "BATCH")  # meta-devices: not listed in available_devices
_TYPE_NAMES = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "float64": "f64"}


def ov_error_reason(exc: BaseException) -> str:
    """The informative line of an exception: OpenVINO's messages start with a source location
    ("Exception from src/...", "Check '...' failed at ...") and end with the actual reason."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(("Exception from ", "Check '"))]
    return (useful or lines or [type(exc).__name__])[-1]


def _plain(value: Any) -> Any:
    """An OpenVINO property value as plain Python: types as ``f32``/``bf16``, enums by name."""
    if hasattr(value, "get_type_name"):  # openvino.Type
        return value.get_type_name()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return _TYPE_NAMES.get(value, value) if isinstance(value, str) else value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    name = getattr(value, "name", None)  # enums such as PerformanceMode.LATENCY
    return name if isinstance(name, str) else str(value)


@BACKENDS.register("openvino")
class OpenVinoBackend(Backend):
    """OpenVINO ``CompiledModel`` on one device.

    Args:
        device: ``CPU``, ``GPU``, ``NPU``, ... (must be in ``openvino.Core().available_devices``) or a
            meta-device (``AUTO``, ``AUTO:GPU,CPU``, ``MULTI:...``, ``HETERO:...``) over available devices.
        performance_hint: ``LATENCY``, ``THROUGHPUT`` or ``CUMULATIVE_THROUGHPUT``.
        num_streams: parallel inference streams; ``None`` lets the performance hint choose.
        inference_num_threads: CPU threads for inference; 0 lets OpenVINO choose.
        inference_precision: ``f32``, ``bf16`` or ``f16``; ``None`` keeps the plugin's default, which on
            CPUs with AMX / avx512_bf16 is bf16. :meth:`info` reports the precision actually used.
        static_latency_shape: the latency pass runs a copy of the model compiled for the exact input shape
            it times (batch 1), as benchmark_app's ``-b 1`` does and as a model deployed for batch 1 would:
            with the batch axis left dynamic, the CPU plugin measured 23 % slower on a small CNN (29.6 vs
            24.1 µs). Costs one extra compile at bind time and, while the latency pass runs, the memory of a
            second compiled model; ``false`` times the dynamic-shape model the accuracy pass uses.
    """

    name = "openvino"

    def __init__(
        self,
        *,
        device: str = "CPU",
        performance_hint: str = "LATENCY",
        num_streams: int | None = None,
        inference_num_threads: int = 0,
        inference_precision: str | None = None,
        static_latency_shape: bool = True,
    ) -> None:
        if not isinstance(device, str) or not device.strip():
            raise ConfigError(f"openvino: device must be a device name such as 'CPU', got {device!r}")
        if performance_hint not in _HINTS:
            raise ConfigError(f"openvino: performance_hint {performance_hint!r} is not one of {_HINTS}")
        if num_streams is not None and (isinstance(num_streams, bool) or not isinstance(num_streams, int)
                                        or num_streams < 1):
            raise ConfigError(f"openvino: num_streams must be an integer >= 1 or omitted, got {num_streams!r}")
        if isinstance(inference_num_threads, bool) or not isinstance(inference_num_threads, int) \
                or inference_num_threads < 0:
            raise ConfigError(f"openvino: inference_num_threads must be an integer >= 0 (0: OpenVINO chooses), "
                              f"got {inference_num_threads!r}")
        if inference_precision is not None and inference_precision not in _PRECISIONS:
            raise ConfigError(f"openvino: inference_precision {inference_precision!r} is not one of "
                              f"{_PRECISIONS} (or omit it for the plugin's default)")

        try:
            import openvino as ov
        except ImportError:
            raise DeviceError("openvino is not installed here; install it on the device (pip install openvino) or "
                              "remove backends.openvino from the target file") from None

        self._ov = ov
        self._core = ov.Core()
        available = list(self._core.available_devices)
        wanted = self._physical_devices(device)
        missing = [d for d in wanted if d not in available and d.split(".")[0] not in
                   {a.split(".")[0] for a in available}]
        if missing:
            raise DeviceError(
                f"openvino: device {device!r} is not available (openvino {ov.__version__}); available: "
                f"{available}. Install the device's plugin/driver or change 'device' in the target file."
            )
        self.device = device
        self.performance_hint = performance_hint
        self.num_streams = num_streams
        self.inference_num_threads = inference_num_threads
        self.inference_precision = inference_precision
        if not isinstance(static_latency_shape, bool):
            raise ConfigError(f"openvino: static_latency_shape must be true or false, got {static_latency_shape!r}")
        self.static_latency_shape = static_latency_shape
        self._latency_shape: list[int] | None = None
        self._model: Any = None
        self._compiled: Any = None
        self._request: Any = None
        self._path: Path | None = None
        self._out = 0  # the output predict and bind return (select_output)

    @staticmethod
    def _physical_devices(device: str) -> list[str]:
        head, _, rest = device.partition(":")
        if head.upper() in _VIRTUAL:
            return [d.strip() for d in rest.split(",") if d.strip()]
        return [device]

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.performance_hint}
        if self.num_streams is not None:
            config["NUM_STREAMS"] = self.num_streams
        if self.inference_num_threads:
            config["INFERENCE_NUM_THREADS"] = self.inference_num_threads
        if self.inference_precision is not None:
            config["INFERENCE_PRECISION_HINT"] = self.inference_precision
        return config

    def load(self, path: Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: model file not found; re-run the export stage or fix the path")
        if path.suffix.lower() == ".xml" and not path.with_suffix(".bin").is_file():
            raise ArtifactError(f"{path}: its weights file {path.with_suffix('.bin')} is missing; an OpenVINO "
                                "IR needs both files side by side — re-run the export stage")
        try:
            model = self._core.read_model(str(path))
        except Exception as exc:  # openvino raises RuntimeError (or its own types) for unreadable files
            raise ArtifactError(
                f"{path}: openvino cannot read this model ({ov_error_reason(exc)}); the file is corrupt or not an "
                "OpenVINO IR / ONNX model — delete it and re-run the export"
            ) from None
        if len(model.inputs) != 1:
            raise ArtifactError(f"{path}: expected a model with one input, found {len(model.inputs)}")
        try:
            compiled = self._core.compile_model(model, self.device, self._config())
        except Exception as exc:
            raise ArtifactError(
                f"{path}: openvino cannot compile this model for device {self.device!r} ({ov_error_reason(exc)}); "
                "check the target's openvino options or re-export the model"
            ) from None
        self._model = model
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._path = path

    def _loaded(self) -> Any:
        if self._compiled is None:
            raise ArtifactError("openvino: no model loaded; call load(path) first")
        return self._compiled

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        shape = self._loaded().input(0).get_partial_shape()
        return tuple(d.get_length() if d.is_static else None for d in shape)

    def select_output(self, which: str | int) -> None:
        outputs = self._loaded().outputs
        self._out = output_index(self._path, [sorted(o.get_names()) for o in outputs], which)

    def predict(self, x: np.ndarray) -> np.ndarray:
        self._loaded()
        x = np.ascontiguousarray(x, dtype=np.float32)
        result = self._request.infer(x, share_inputs=True)  # outputs copied out of the request
        return np.asarray(result[self._out], dtype=np.float32)

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        """One infer request whose input tensor wraps ``x``'s memory, set once. The callable only runs
        ``infer`` and returns the logits as a view of the request's output tensor (no copy; the next call
        overwrites it)."""
        data = np.ascontiguousarray(x, dtype=np.float32)
        compiled = self._compile_for(list(data.shape))
        request = compiled.create_infer_request()
        request.set_input_tensor(self._ov.Tensor(data, shared_memory=True))
        infer = request.infer
        out = self._out

        def run() -> np.ndarray:
            # to_tuple()[i]: ~1 µs; OVDict[i] (singledispatch) costs ~10 µs on a ~40 µs inference
            return infer(share_outputs=True).to_tuple()[out]

        # the shared input buffer must live as long as the request (and the request as its compiled model)
        run.input = data  # type: ignore[attr-defined]
        run.request = request  # type: ignore[attr-defined]
        run.compiled = compiled  # type: ignore[attr-defined]
        return run

    def _compile_for(self, shape: list[int], **extra: Any) -> Any:
        """The model the latency pass runs on inputs of ``shape``: compiled for that static shape (see
        ``static_latency_shape``), else the loaded one; ``extra`` config (``PERF_COUNT``) compiles a new copy."""
        compiled = self._loaded()
        model = self._model
        if self.static_latency_shape and not model.input(0).get_partial_shape().is_static:
            try:
                static = model.clone()
                static.reshape(shape)
                compiled = self._core.compile_model(static, self.device, {**self._config(), **extra})
                self._latency_shape = shape
                return compiled
            except Exception as exc:  # a model that cannot be reshaped: time the dynamic one, and say so
                log.warning("openvino: cannot compile %s for the static shape %s (%s); timing the dynamic-shape "
                            "model", self._path, shape, ov_error_reason(exc))
        return self._core.compile_model(model, self.device, {**self._config(), **extra}) if extra else compiled

    def profile(self, x: np.ndarray, runs: int) -> tuple[list[dict[str, Any]], int] | None:
        """A second compiled model with ``PERF_COUNT`` on (the same shape the latency pass times): one
        inference not counted, then ``runs`` (see :func:`~edgebench.runtime.profiling.ov_records`)."""
        from edgebench.runtime.profiling import ov_records

        data = np.ascontiguousarray(x, dtype=np.float32)
        request = self._compile_for(list(data.shape), PERF_COUNT=True).create_infer_request()
        request.infer(data)
        before = request.get_profiling_info()
        for _ in range(runs):
            request.infer(data)
        return ov_records(before, request.get_profiling_info(), 1, 1 + runs), runs

    def _read(self, key: str) -> Any:
        if self._compiled is None:
            return None
        try:
            return _plain(self._compiled.get_property(key))
        except Exception:  # a property the device's plugin does not expose
            return None

    def info(self) -> dict[str, Any]:
        try:
            full_name = _plain(self._core.get_property(self.device, "FULL_DEVICE_NAME"))
        except Exception:
            full_name = None
        precision = self._read("INFERENCE_PRECISION_HINT")
        return {
            "backend": self.name,
            "runtime_version": self._ov.__version__,
            "device": self.device,
            "device_name": full_name,
            "execution_devices": self._read("EXECUTION_DEVICES"),
            "performance_hint": self._read("PERFORMANCE_HINT") or self.performance_hint,
            "num_streams": self._read("NUM_STREAMS"),
            "inference_num_threads": self._read("INFERENCE_NUM_THREADS"),
            "requested": {"num_streams": self.num_streams, "inference_num_threads": self.inference_num_threads,
                          "inference_precision": self.inference_precision},
            "latency_shape": self._latency_shape,  # the static shape the latency pass compiled for, if any
            "precision": precision if precision is not None else self.inference_precision,
        }
