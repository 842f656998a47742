"""Shared test fixtures."""

import os

import pytest
import torch

# impl="triton" on CPU tensors runs in Triton's interpreter, which Triton selects when it is first imported: without
# CUDA, set it before any test imports triton (tests/functional/test_flash_triton.py). Nothing else uses Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(params=DEVICES)
def device(request):
    """Each equivalence test runs on the CPU and, where CUDA is present, on the GPU too (CI has no GPU; a GPU
    machine runs the same suite unchanged). On CUDA, TF32 is switched off for the test so the references (torch's
    own modules, float64 copies) compute in true float32, as on the CPU; the setting is restored after."""
    if request.param == "cuda":
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        yield "cuda"
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
    else:
        yield "cpu"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add synchronisation (10-50x slower on 2 busy cores).

    A module opts in with ``pytestmark = pytest.mark.usefixtures("one_thread")``; the count is restored after it.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _close_figures():
    """Tests that draw leave their matplotlib figures open; close them so none accumulate across tests."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
