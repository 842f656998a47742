"""``attnlab bench flash``: registered on request only, and it refuses the CPU (it times GPU kernels)."""

import pytest

from attnlab import bench
from attnlab.bench import flash


def test_registered_on_request_only():
    assert "flash" in bench.names()
    assert "flash" not in bench.default_names()


def test_refuses_the_cpu():
    with pytest.raises(
        ValueError, match=r"^device: attnlab bench flash times GPU kernels: expected --device cuda, got 'cpu'"
    ):
        flash.run(quick=True, device="cpu")
