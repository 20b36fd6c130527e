"""An ONNX file as a user brings it: the model entry's boundary keys, and what the file's graph says, checked on
the host before anything runs it. The conversion itself is device-side (:mod:`edgebench.runtime.boundary`).

Model entry keys (``[[models]]`` with ``onnx``): ``layout`` (``"nchw"`` or ``"nhwc"``), ``input_range``
(``[lo, hi]``, default ``[0, 1]``), ``output`` (a name or an index: the output holding the scores) and ``scores``
(``"logits"`` or ``"probabilities"``; unset, a graph whose chosen output comes from a ``Softmax`` is read as
probabilities). :func:`inspect_onnx` reads the graph with ``onnx`` and returns the resolved boundary, or raises
one line naming the file and the input or output and what to do: several inputs, a non-float input, an input of
the wrong rank or shape for the data, a layout the shape contradicts, a named output the file does not have.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgebench.errors import ArtifactError, DataError

IO_KEYS = ("layout", "input_range", "output", "scores")
#: ops that pass a softmax's values through unchanged in value (walked back over to find the output's producer)
_PASS_THROUGH = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast")


def read_io_keys(t: Any, *, onnx: bool) -> dict[str, Any]:
    """The boundary keys a ``[[models]]`` table (a :class:`~edgebench.toml_table.Table`) gives, checked; only
    an ``onnx`` model takes them (edgebench's own exports take [0, 1] NCHW and return logits)."""
    from edgebench.runtime.boundary import LAYOUTS, SCORES, ModelIO

    raw: dict[str, Any] = {}
    layout = t.choice("layout", list(LAYOUTS))
    if layout is not None:
        raw["layout"] = layout
    rng = t.get("input_range", list)
    if rng is not None:
        raw["input_range"] = rng
    out = t.get("output", (str, int))
    if out is not None:
        raw["output"] = out
    scores = t.choice("scores", list(SCORES))
    if scores is not None:
        raw["scores"] = scores
    if raw and not onnx:
        key = next(iter(raw))
        raise t.fail(key, "applies to an 'onnx' model only (a zoo or factory model is exported by edgebench, which "
                          "feeds it [0, 1] NCHW and reads its logits); remove it")
    for key in raw:
        try:
            ModelIO.from_dict({key: raw[key]}, where=key)
        except Exception as exc:
            raise t.fail(key, str(exc).split(": ", 1)[1]) from None
    return raw


def _dims(value_info: Any) -> list[int | None] | None:
    """A graph input's or output's dims (None: symbolic or unknown); None when the rank is unknown."""
    tt = value_info.type.tensor_type
    if not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tt.shape.dim]


def _shape_text(dims: list[int | None] | tuple[int | None, ...]) -> str:
    return "×".join("?" if d is None else str(d) for d in dims)


def _fits(dims: list[int | None], want: tuple[int, ...]) -> bool:
    return len(dims) == len(want) and all(d is None or d == w for d, w in zip(dims, want))


def _softmax_producer(graph: Any, name: str) -> str | None:
    """The name (or op) of the Softmax node ``name`` comes from, through pass-through ops; None if it does not."""
    producers = {o: n for n in graph.node for o in n.output}
    node = producers.get(name)
    while node is not None and node.op_type in _PASS_THROUGH and node.input:
        node = producers.get(node.input[0])
    if node is not None and node.op_type == "Softmax":
        return node.name or "Softmax"
    return None


def _check_input(path: Path, where: str, name: str, dims: list[int | None] | None, layout: str | None,
                 data: tuple[int, ...]) -> str:
    """The layout of the input ``name`` (given or ``nchw``), after checking its shape against the data's samples."""
    if dims is None:
        return layout or "nchw"
    sample = dims[1:]
    nhwc = (*data[1:], data[0]) if len(data) == 3 else None
    head = f"{where}: {path}: input {name!r} has shape {_shape_text(dims)}"
    remedy = (f"export the model for {_shape_text(data)} samples (NCHW)"
              + (f" or {_shape_text(nhwc)} (NHWC, with layout = \"nhwc\")" if nhwc else "")
              + " or use a data set of the model's shape")
    if len(sample) != len(data):
        raise DataError(f"{head}: {len(sample)} dims per sample after the batch, the data's samples are "
                        f"{_shape_text(data)}; {remedy}")
    as_nchw, as_nhwc = _fits(sample, data), nhwc is not None and _fits(sample, nhwc)
    if layout == "nhwc":
        if nhwc is None:
            raise DataError(f"{where}: {path}: layout = \"nhwc\" needs image data (C×H×W samples), the data's are "
                            f"{_shape_text(data)}; remove layout")
        if not as_nhwc:
            raise DataError(f"{head}, which " + ("is NCHW for the data's " + _shape_text(data)
                                                  + ': layout = "nhwc" contradicts it; remove layout'
                                                  if as_nchw else f"is not NHWC for the data's {_shape_text(data)}; "
                                                  + remedy))
        return "nhwc"
    if not as_nchw:
        if as_nhwc:
            fix = "set layout = \"nhwc\"" if layout is None else 'layout = "nchw" contradicts it; set layout = "nhwc"'
            raise DataError(f"{head}, which is NHWC for the data's {_shape_text(data)} samples: {fix}")
        raise DataError(f"{head}, the data's samples are {_shape_text(data)}; {remedy}")
    return "nchw"


def inspect_onnx(path: Path, given: dict[str, Any], data_shape: tuple[int, ...], *, where: str) -> dict[str, Any]:
    """Check the ONNX file ``path`` against the data's sample shape and the model entry's boundary keys ``given``;
    return its boundary: ``io`` (the :class:`~edgebench.runtime.boundary.ModelIO` dict jobs carry), ``input``,
    ``input_shape``, ``fixed_batch`` (None: dynamic), ``outputs``, ``output``, ``scores`` and ``scores_from``."""
    import onnx

    from edgebench.runtime.boundary import ModelIO

    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    init = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in init]
    if len(inputs) != 1:
        raise ArtifactError(f"{where}: {path}: the model has {len(inputs)} inputs {[i.name for i in inputs]}; "
                            "edgebench feeds one image tensor: export it with a single input (others as constants)")
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type
    if elem != onnx.TensorProto.FLOAT:
        kind = onnx.TensorProto.DataType.Name(elem).lower() if elem else "not a tensor"
        raise ArtifactError(f"{where}: {path}: input {inp.name!r} is {kind}; edgebench feeds float32 images in "
                            "input_range: export the model with a float32 input (quantization inside the graph is "
                            "fine)")
    dims = _dims(inp)
    layout = _check_input(path, where, inp.name, dims, given.get("layout"), tuple(data_shape))
    outputs = [o.name for o in graph.output]
    which = given.get("output", 0)
    if isinstance(which, int) and which >= len(outputs) or isinstance(which, str) and which not in outputs:
        raise ArtifactError(f"{where}: {path}: the model has no output {which!r}; its outputs are {outputs} "
                            f"(0..{len(outputs) - 1}): set output on the model entry to one of them")
    out_name = outputs[which] if isinstance(which, int) else which
    softmax = _softmax_producer(graph, out_name)
    scores = given.get("scores") or ("probabilities" if softmax else "logits")
    scores_from = "the plan" if given.get("scores") else f"Softmax node {softmax!r} ends the graph" if softmax \
        else "default"
    io = ModelIO.from_dict({**given, "layout": layout, "output": out_name if outputs.index(out_name) else 0,
                            "scores": scores}, where=where)
    batch = dims[0] if dims else None
    return {"io": io.to_dict(), "input": inp.name, "input_shape": dims, "fixed_batch": batch,
            "outputs": outputs, "output": out_name, "scores": scores, "scores_from": scores_from}


def check_scores(backend: Any, boundary: dict[str, Any], x: Any, num_classes: int, *, where: str,
                 path: Path) -> None:
    """Run the loaded ``backend`` (seen through ``boundary``) on one sample more than the file's fixed batch (a full
    batch and a padded one) of ``x``; one line if the chosen output is not ``(N, num_classes)`` scores, or if
    ``probabilities`` are not (rows summing to 1)."""
    import numpy as np

    n = (boundary.get("fixed_batch") or 1) + 1
    out = backend.predict(x[:n])
    if out.ndim != 2 or out.shape[1] != num_classes:
        raise DataError(f"{where}: {path}: output {boundary['output']!r} gives shape {tuple(out.shape)} for {n} "
                        f"samples, expected (N, {num_classes}); the file's outputs are {boundary['outputs']}: set "
                        "output on the model entry to the one holding the scores")
    if boundary.get("scores") == "probabilities":
        sums = np.exp(out.astype(np.float64)).sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            raise DataError(f"{where}: {path}: output {boundary['output']!r} is not probabilities (its rows sum to "
                            f"{float(sums[0]):.4g}, not 1, after clipping at 0): set scores = \"logits\" on the "
                            "model entry")


def artifact_io(card: dict[str, Any]) -> dict[str, Any]:
    """The boundary (``io`` dict) a job must carry for the artifact described by ``card`` (``{}`` for edgebench's
    own exports)."""
    return dict((card.get("provenance") or {}).get("boundary", {}).get("io", {}))


def describe(model: str, boundary: dict[str, Any]) -> str:
    """One sentence of the report on an imported file's boundary."""
    io = boundary.get("io", {})
    batch = boundary.get("fixed_batch")
    parts = [f"input {boundary.get('input')!r} {_shape_text(boundary.get('input_shape') or ())} "
             f"({io.get('layout', 'nchw').upper()})"]
    if batch == 1:
        parts.append("fixed batch 1: every inference, accuracy and latency, runs one sample")
    elif batch:
        parts.append(f"fixed batch {batch}: the accuracy pass runs in chunks of exactly {batch}, the last padded "
                     f"and the padding's outputs dropped; latency and energy are per call, i.e. per batch of {batch}")
    else:
        parts.append("dynamic batch")
    lo, hi = io.get("input_range", (0.0, 1.0))
    if (lo, hi) != (0.0, 1.0):
        parts.append(f"inputs rescaled from [0, 1] to [{lo:g}, {hi:g}]")
    outputs = boundary.get("outputs") or []
    if len(outputs) > 1:
        parts.append(f"scores from output {boundary.get('output')!r} "
                     f"({outputs.index(boundary.get('output')) + 1} of {len(outputs)})")
    if boundary.get("scores") == "probabilities":
        parts.append(f"probabilities ({boundary.get('scores_from')}), read as log-probabilities")
    return f"{model}: imported ONNX file, " + "; ".join(parts) + "."
