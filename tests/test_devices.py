"""Device names: spelled right, and present on this machine, before any work starts."""

import pytest
import torch

from attnlab._checks import available_devices, check_device_name, resolve_device


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:", "CPU", "", 0, None])
def test_misspelled_devices_name_the_spellings(bad):
    with pytest.raises(ValueError, match=r"device: expected 'cpu', 'cuda', 'cuda:N' or 'auto'"):
        check_device_name(bad)


def test_auto_picks_cuda_only_when_present():
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_a_missing_gpu_names_what_is_available():
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match=rf"device: 'cuda:{n}' is not available on this machine \(available: cpu"):
        resolve_device(f"cuda:{n}")
    if n == 0:
        with pytest.raises(ValueError, match=r"'cuda' is not available on this machine \(available: cpu\)"):
            resolve_device("cuda")
    assert available_devices().split(", ") == ["cpu", *(f"cuda:{i}" for i in range(n))]
