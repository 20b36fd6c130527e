"""ONNX Runtime backend. Torch-free; imports ``onnxruntime`` only when instantiated."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgebench.errors import ArtifactError, ConfigError, DeviceError
from edgebench.runtime import BACKENDS
from edgebench.runtime.base import Backend, output_index

_OPT_LEVELS = ("disable", "basic", "extended", "all")


@BACKENDS.register("onnxruntime")
class OnnxRuntimeBackend(Backend):
    """ONNX Runtime ``InferenceSession``.

    Args:
        providers: execution providers in order of preference; each must be available in the installed
            build (``onnxruntime.get_available_providers()``).
        intra_op_num_threads: threads inside one operator; 0 lets ONNX Runtime choose.
        inter_op_num_threads: threads across operators; 0 lets ONNX Runtime choose.
        graph_optimization_level: one of ``disable``, ``basic``, ``extended``, ``all``.
        provider_options: per-provider settings, e.g. ``{"TensorrtExecutionProvider": {"trt_fp16_enable":
            "True"}, "CUDAExecutionProvider": {"device_id": "0"}}`` (ONNX Runtime's own option names; values
            are passed as strings); a provider named here must be in ``providers``.

    :meth:`info` reports the providers the session actually uses (ONNX Runtime falls back silently to the
    next provider when one cannot take the model, so the requested list alone proves nothing).
    """

    name = "onnxruntime"

    def __init__(
        self,
        *,
        providers: list[str] | tuple[str, ...] = ("CPUExecutionProvider",),
        intra_op_num_threads: int = 0,
        inter_op_num_threads: int = 0,
        graph_optimization_level: str = "all",
        provider_options: dict[str, dict[str, object]] | None = None,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DeviceError("onnxruntime is not installed here; install it on the device (pip install "
                              "onnxruntime) or remove backends.onnxruntime from the target file") from None

        self._ort = ort
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise DeviceError(
                f"onnxruntime: execution provider(s) {missing} are not available in this build "
                f"(onnxruntime {ort.__version__}); available: {available}. "
                "Install a build that has them or change 'providers' in the target file."
            )
        if graph_optimization_level not in _OPT_LEVELS:
            raise ConfigError(
                f"onnxruntime: graph_optimization_level {graph_optimization_level!r} is not one of {_OPT_LEVELS}"
            )
        for key, value in (("intra_op_num_threads", intra_op_num_threads),
                           ("inter_op_num_threads", inter_op_num_threads)):
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"onnxruntime: {key} must be an integer >= 0, got {value!r}")
        provider_options = dict(provider_options or {})
        for name, opts in provider_options.items():
            if name not in providers or not isinstance(opts, dict):
                raise ConfigError(f"onnxruntime: provider_options.{name}: give a table of options for a provider "
                                  f"listed in 'providers' ({list(providers)})")
        self.provider_options = {k: {o: str(v) for o, v in opts.items()} for k, opts in provider_options.items()}
        self.providers = list(providers)
        self.intra_op_num_threads = intra_op_num_threads
        self.inter_op_num_threads = inter_op_num_threads
        self.graph_optimization_level = graph_optimization_level
        self._session: Any = None
        self._input_name = ""
        self._output_names: list[str] = []
        self._path: Path | None = None

    def load(self, path: Path) -> None:
        ort = self._ort
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path}: model file not found; re-run the export stage or fix the path")
        try:
            self._session = self._new_session(path, ort.SessionOptions())
        except Exception as exc:  # onnxruntime raises its own exception types for corrupt files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ArtifactError(
                f"{path}: onnxruntime cannot load this model ({first}); the file is corrupt or not ONNX — "
                "delete it and re-run the export"
            ) from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ArtifactError(f"{path}: expected a model with one input, found {len(inputs)}")
        self._input_name = inputs[0].name
        self._output_names = [o.name for o in self._session.get_outputs()][:1]
        self._path = path

    def _new_session(self, path: Path, opts: Any) -> Any:
        """An ``InferenceSession`` of ``path`` with this backend's options set on ``opts``."""
        ort = self._ort
        opts.intra_op_num_threads = self.intra_op_num_threads
        opts.inter_op_num_threads = self.inter_op_num_threads
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.graph_optimization_level]
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), sess_options=opts, providers=self.providers,
                                    provider_options=[self.provider_options.get(p, {}) for p in self.providers])

    def profile(self, x: np.ndarray, runs: int) -> tuple[list[dict[str, Any]], int] | None:
        """A second session with ONNX Runtime's profiler on: one inference not counted (first-run
        allocations), then ``runs``; the trace file is read and deleted."""
        import json
        import tempfile

        from edgebench.runtime.profiling import ort_records

        if self._path is None:
            raise ArtifactError("onnxruntime: no model loaded; call load(path) first")
        with tempfile.TemporaryDirectory(prefix="edgebench-profile-") as tmp:
            opts = self._ort.SessionOptions()
            opts.enable_profiling = True
            opts.profile_file_prefix = str(Path(tmp) / "ort")
            session = self._new_session(self._path, opts)
            feed = {self._input_name: np.ascontiguousarray(x, dtype=np.float32)}
            for _ in range(runs + 1):
                session.run(self._output_names, feed)
            with open(session.end_profiling()) as f:
                return ort_records(json.load(f), skip_runs=1)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        shape = self._session.get_inputs()[0].shape
        return tuple(d if isinstance(d, int) else None for d in shape)

    def select_output(self, which: str | int) -> None:
        names = [o.name for o in self._session.get_outputs()]
        self._output_names = [names[output_index(self._path, [[n] for n in names], which)]]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(self._output_names, {self._input_name: x})[0]

    def bind(self, x: np.ndarray) -> Callable[[], Any]:
        run = self._session.run
        names = self._output_names
        feed = {self._input_name: np.ascontiguousarray(x, dtype=np.float32)}
        return lambda: run(names, feed)

    def info(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "runtime_version": self._ort.__version__,
            "providers": self._session.get_providers() if self._session else self.providers,
            "requested_providers": self.providers,
            "provider_options": self.provider_options,
            "intra_op_num_threads": self.intra_op_num_threads,
            "inter_op_num_threads": self.inter_op_num_threads,
            "graph_optimization_level": self.graph_optimization_level,
            "precision": "f32",
        }
