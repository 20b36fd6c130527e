"""Square Attack's time per query against its floor and against ART, all through one ONNX Runtime session of the
same exported model (digits_cnn trained 3 epochs on scikit-learn's digits, seed 0; all 360 test images).

- ``floor``: a bare loop of ``session.run`` calls (``Backend.bind``) with exactly the batch sizes the attack sent
  (recorded from a first run; inputs prepared beforehand), so the attack's own overhead is
  ``edgebench / floor - 1`` (goal ≤ 10 %).
- ``art``: ART's ``SquareAttack`` (L∞, ``p_init`` the paper's 0.05, ``max_iter`` the same budget). ART refuses a
  ``BlackBoxClassifier`` for it, so this comparison runs both attacks on the torch model (ART's
  ``PyTorchClassifier``, edgebench on the model's forward), timed per query each made.

    PYTHONPATH=. python bench/bench_blackbox.py [--queries 300] [--eps 0.1] [--batch 256] [--reps 3] [--threads 1]
                                                [--model digits_cnn]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import interleaved, table  # noqa: E402

from edgebench.blackbox import run_query_attack  # noqa: E402


class Recorder:
    """The session's predict with every call's batch size recorded."""

    def __init__(self, predict) -> None:
        self.predict = predict
        self.sizes: list[int] = []

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.sizes.append(len(x))
        return self.predict(x)


def _model(tmp: Path, threads: int, arch: str = "digits_cnn"):
    import torch

    from edgebench.data import load_dataset
    from edgebench.export.onnx import export_onnx
    from edgebench.models import create_model
    from edgebench.models.train import TrainConfig, seeded, train
    from edgebench.runtime import create_backend

    torch.set_num_threads(threads)
    seeded(0)
    backend = create_backend("onnxruntime", intra_op_num_threads=threads, inter_op_num_threads=1)
    if arch == "digits_cnn":
        ds = load_dataset("digits")
        model = create_model(arch, input_shape=ds.shape, num_classes=ds.num_classes)
        train(model, ds.x_train, ds.y_train, TrainConfig(epochs=3, seed=0))
        backend.load(export_onnx(model.eval(), ds.shape, tmp / f"{arch}.onnx"))
        return backend, model, ds.x_test, ds.y_test
    # a larger model, untrained (seed 0), on 360 uniform 28x28 inputs labelled with its own top-1
    model = create_model(arch, input_shape=(1, 28, 28), num_classes=10).eval()
    backend.load(export_onnx(model, (1, 28, 28), tmp / f"{arch}.onnx"))
    x = np.random.default_rng(0).random((360, 1, 28, 28), dtype=np.float32)
    return backend, model, x, backend.predict(x).argmax(1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", default="digits_cnn", help="digits_cnn (trained on digits) or a 28x28 zoo model "
                    "(untrained, random inputs labelled with its own top-1), e.g. liu2018_mnist")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        backend, model, x, y = _model(Path(tmp), args.threads, args.model)
        params = {"norm": "linf", "max_queries": args.queries, "seed": 0}
        rec = Recorder(backend.predict)
        res = run_query_attack("square", params, rec, x, y, [args.eps], batch_size=args.batch)
        rows = sum(rec.sizes)
        assert rows == res.queries.sum()
        # the backend's cheapest call path (``bind``: the session's run on a feed prepared once) per batch size
        calls = {n: backend.bind(x[np.arange(n) % len(x)]) for n in set(rec.sizes)}
        plan = [calls[n] for n in rec.sizes]

        def floor() -> None:
            for call in plan:
                call()

        def ours() -> None:
            run_query_attack("square", params, backend.predict, x, y, [args.eps], batch_size=args.batch)

        times = interleaved({"floor": floor, "edgebench_square": ours}, reps=args.reps)
        print(f"Square L∞ ε={args.eps}, max_queries {args.queries}, {args.model} ONNX (onnxruntime, {args.threads} "
              f"thread(s)), {len(x)} samples: {rows} queries in {len(rec.sizes)} predict calls, robust accuracy "
              f"{1 - res.success.mean():.3f}\n")
        print(table(times, "floor"))
        per_query = {k: statistics.median(v) / rows * 1e6 for k, v in times.items()}
        overhead = per_query["edgebench_square"] / per_query["floor"] - 1
        print(f"\nper query: floor {per_query['floor']:.2f} µs, edgebench {per_query['edgebench_square']:.2f} µs; "
              f"the attack's own overhead {overhead * 100:.1f} % of the runtime's time")
        _art(model, backend, x, y, args)


def _art(model, backend, x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> None:
    """ART's SquareAttack needs a gradient-capable estimator (``BlackBoxClassifier`` is refused), so both attacks run
    on the torch model here, through the same counting predict: ART's ``PyTorchClassifier`` and edgebench's
    ``run_query_attack`` on the model's forward."""
    try:
        from art.attacks.evasion import SquareAttack
        from art.estimators.classification import PyTorchClassifier
    except ImportError:
        print("\nART is not installed: pip install 'edgebench[art]' for the comparison with ART")
        return
    import torch
    from torch import nn

    calls: list[int] = []

    class Counted(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            calls.append(len(t))
            return self.inner(t.float())

    counted = Counted().eval()
    clf = PyTorchClassifier(model=counted, loss=nn.CrossEntropyLoss(), input_shape=x.shape[1:], nb_classes=10,
                            clip_values=(0.0, 1.0), device_type="cpu")

    def torch_predict(b: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return counted(torch.from_numpy(b)).numpy()

    def art() -> None:
        np.random.seed(0)
        SquareAttack(clf, norm=np.inf, eps=args.eps, max_iter=args.queries - 2, p_init=0.05, nb_restarts=1,
                     batch_size=args.batch, verbose=False).generate(x, y)

    def ours() -> None:
        run_query_attack("square", {"norm": "linf", "max_queries": args.queries, "seed": 0}, torch_predict, x, y,
                         [args.eps], batch_size=args.batch)

    rows = {}
    for name, fn in (("art", art), ("edgebench_square", ours)):
        calls.clear()
        fn()
        rows[name] = sum(calls)
    times = interleaved({"edgebench_square": ours, "art": art}, reps=args.reps)
    print(f"\n## against ART's SquareAttack (max_iter {args.queries - 2}, p_init 0.05), both on the torch model\n")
    print(table(times, "edgebench_square"))
    us = {k: statistics.median(times[k]) / rows[k] * 1e6 for k in rows}
    print(f"\nqueries: ART {rows['art']}, edgebench {rows['edgebench_square']}; per query: ART {us['art']:.2f} µs, "
          f"edgebench {us['edgebench_square']:.2f} µs (ART / edgebench {us['art'] / us['edgebench_square']:.2f}×)")


if __name__ == "__main__":
    main()
