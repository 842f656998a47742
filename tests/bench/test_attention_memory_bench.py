"""bench attention-memory (quick sizes): the rows it reports and the claim they carry."""

from attnlab.bench import attention_memory


def test_quick_run_reports_chunked_far_below_naive():
    result = attention_memory.run(quick=True)
    rows = {(r["impl"], r["n"], r["mode"]): r["peak_gib"] for r in result["rows"]}
    assert set(rows) == {
        ("chunked", 2048, "forward"),
        ("naive", 2048, "forward"),
        ("chunked", 4096, "forward"),
        ("chunked", 4096, "forward+backward"),
    }
    # naive holds two (n, n) float32 matrices per head: 2 * 8 * 2048^2 * 4 bytes = 0.25 GiB
    assert rows[("naive", 2048, "forward")] >= 0.25
    assert result["chunked_over_naive_at_n"]["ratio"] < 0.1
    assert "| naive | 2048 | forward |" in attention_memory.to_markdown(result)
