"""``attnlab bench flash``: registered on request only, GPU only, and a CPU run is one clear error."""

import pytest

from attnlab import bench
from attnlab.bench import flash
from attnlab.cli import main
from cli_helpers import one_line_error


def test_registered_on_request_and_for_the_gpu_only():
    assert "flash" in bench.names()
    assert "flash" not in bench.default_names()
    assert "flash" in bench.GPU_ONLY


def test_refuses_the_cpu():
    with pytest.raises(
        ValueError, match=r"^device: attnlab bench flash times GPU kernels: expected --device cuda, got 'cpu'"
    ):
        flash.run(quick=True, device="cpu")


def test_cli_names_the_device(capsys, tmp_path):
    assert main(["bench", "flash", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "--device: flash times GPU kernels; run it with --device cuda" in one_line_error(capsys)
    assert not any(tmp_path.iterdir())  # refused before any work
