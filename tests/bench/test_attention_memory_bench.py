"""bench attention-memory (quick sizes): the rows it reports and the claims they carry (tensor peaks are exact:
they do not depend on the machine)."""

import pytest
import torch

from attnlab.bench import attention_memory


@pytest.fixture(scope="module")
def result():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tensor peaks do not depend on threads; one thread spares a shared machine
    try:
        return attention_memory.run(quick=True)
    finally:
        torch.set_num_threads(threads)


def test_quick_run_reports_chunked_far_below_naive(result):
    rows = {(r["impl"], r["n"], r["mode"], r["mask"]): r["peak_gib"] for r in result["rows"]}
    assert set(rows) == {
        ("chunked", 2048, "forward", "none"),
        ("naive", 2048, "forward", "none"),
        *(("chunked", n, "forward", m) for n in (1024, 4096) for m in ("none", "causal", "key-padding")),
        ("chunked", 4096, "forward", "none"),
        ("chunked", 4096, "forward+backward", "none"),
        ("chunked", 4096, "forward+backward", "causal"),
    }
    # naive holds two (n, n) float32 matrices per head: 2 * 8 * 2048^2 * 4 bytes = 0.25 GiB
    assert rows[("naive", 2048, "forward", "none")] >= 0.25
    assert result["chunked_over_naive_at_n"]["ratio"] < 0.1
    assert "| naive | 2048 | forward | none |" in attention_memory.to_markdown(result)


def test_masks_keep_chunked_memory_linear(result):
    """Causal and key-padding masks are applied per tile: memory grows at most linearly in n (slope <= 1.2),
    where one (T, S) mask would grow it with slope 2."""
    slopes = result["memory_slope_in_n"]
    assert slopes["sizes"] == [1024, 4096]
    for mask in ("none", "causal", "key-padding"):
        assert slopes[mask] <= 1.2, (mask, slopes)
