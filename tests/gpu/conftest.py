"""GPU tests: every test under ``tests/gpu`` needs a CUDA device and is skipped, with the reason, where torch sees
none. On a GPU they run with deterministic cuDNN kernels and without TF32 (which rounds float32 matrix products to
10-bit mantissas on Ampere and later), so a CUDA run is compared with a CPU run at float32 rounding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = __file__.rsplit("/", 1)[0]
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.gpu)
            if not torch.cuda.is_available():
                item.add_marker(pytest.mark.skip(reason=f"needs a CUDA device; torch {torch.__version__} sees none "
                                                        f"(torch.cuda.is_available() is False)"))


@pytest.fixture(autouse=True)
def _exact_cuda() -> Iterator[None]:
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = flags
