"""One rule for safe names (:func:`edgebench.naming.slug`) and the report places that use it: HTML anchors and
CSV headers (plot names: test_plots; variant names and labels: test_config)."""

from __future__ import annotations

import pytest

from edgebench.naming import slug
from edgebench.report.html import html
from edgebench.report.tables import Section, Table, csv_key


@pytest.mark.parametrize(("text", "kw", "want"), [
    ("pi 4/onnxruntime", {}, "pi_4_onnxruntime"),  # a file or folder name: runs of others -> one "_"
    ("device/local/onnx/liu2018/int8", {}, "device_local_onnx_liu2018_int8"),
    ("__a..b--c__", {}, "a..b--c"),  # kept characters stay, the separator is trimmed at the ends
    ("///", {}, "x"),
    ("", {"default": "table"}, "table"),
    ("asr-vs-eps-Liu2018_MNIST", {"sep": "-", "keep": "", "lower": True}, "asr-vs-eps-liu2018-mnist"),
    ("tradeoffs-pi 4 (arm64)", {"sep": "-", "keep": "", "lower": True}, "tradeoffs-pi-4-arm64"),
    ("Robust accuracy, ε", {"keep": "", "lower": True}, "robust_accuracy"),
])
def test_slug(text: str, kw: dict[str, object], want: str) -> None:
    assert slug(text, **kw) == want


def test_report_anchors_and_csv_headers_use_it() -> None:
    assert csv_key("robust_acc [95 % CI]") == "robust_acc"
    assert csv_key("mean ± std") == "mean_std"
    assert csv_key("τ") == "tau" and csv_key("median |∂J/∂x|") == "median_d_j_per_d_x"  # not "column", "j_per_x"
    page = html("t", "", [Section("s", "S", [Table("Best variant / target", "T", ["a"], [["1"]]),
                                             Table("best-variant-target", "T2", ["a"], [["2"]])])], {})
    assert 'id="best-variant-target"' in page and 'id="best-variant-target-2"' in page
