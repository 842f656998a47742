"""The words of ``complexity``: claim, setup, summary and headline, filled from the result."""

from __future__ import annotations

from typing import Any

from attnlab.experiments.base import Words
from attnlab.experiments.words import closing, fill

TITLE = "The O(n^2) cost of self-attention and the context window"
CLAIM = (
    "Self-attention costs O(n^2) time and memory in the sequence length n, which is why it limits the "
    "context length (the context window)."
)
SOURCE = (
    "Seed 001 (chapter 3), learning objective 6 and section 3.3; seed 003 (why all-to-all attention gives rise to a "
    "context window)"
)
MAIN_FIGURE = "time"


SETUP = """
attnlab.functional.scaled_dot_product_attention with impl in {cfg.impls} on {r[device_name]}: B=1, {cfg.heads} heads,
head size {cfg.head_size}, float32, no mask, n in {cfg.lengths}. Time: median of torch.utils.benchmark repeats
({cfg.min_run_time:g} s each). Memory: peak tensor memory above the starting point during the call (the allocator's
reports, attnlab.measure.peak_memory_bytes). Forward under no_grad; training step = forward + backward into Q, K and
V. FLOPs: FlopCounterMode on the forward. Slopes: least-squares log-log fit over the upper half of n. Budgets: the
largest measured n whose training step fits, and where the fitted power law crosses {cfg.budgets_mib} MiB.
"""


def setup(cfg: Any, r: dict[str, Any]) -> str:
    return fill(SETUP, cfg, r)


def summary(cfg: Any, r: dict[str, Any]) -> str:
    m, held, skipped = r["metrics"], r["held"], r["data"]["skipped"]
    verdict = r["data"]["verdict"]
    parts = []
    for impl in cfg.impls:
        parts.append(
            f"{impl}: time ~ n^{m.get(f'time_slope/{impl}/forward')} (forward), "
            f"~ n^{m.get(f'time_slope/{impl}/train')} (train); memory ~ n^{m.get(f'memory_slope/{impl}/forward')} "
            f"(forward), ~ n^{m.get(f'memory_slope/{impl}/train')} (train)"
        )
    text = "Fitted exponents: " + "; ".join(parts) + ". "
    budgets = []
    for b in cfg.budgets_mib:
        per = ", ".join(_budget_text(impl, m[f"max_n_within_{b}MiB/{impl}/train"]) for impl in cfg.impls)
        budgets.append(f"{b} MiB: {per}")
    text += "Longest context whose training step fits (n): " + "; ".join(budgets) + ". "
    if any(skipped.values()):
        text += (
            "Not run (predicted over the machine's limit): "
            + "; ".join(f"{i}: {', '.join(s)}" for i, s in skipped.items() if s)
            + ". "
        )
    if held:
        return text + (
            "The claim held: every implementation's time grows as n^2, and naive attention's memory grows as "
            "n^2, which is what bounds its context window; tiling (chunked, torch's fused kernel) makes memory "
            "linear but leaves the n^2 time."
        )
    return text + closing(held, verdict)


def _budget_text(impl: str, r: dict[str, Any]) -> str:
    text = f"{impl} {r['measured']} measured"
    if r["predicted"] is not None:
        text += f", ~{r['predicted']:,} by the fitted memory model (a training step there: ~{r['seconds_there']:,} s)"
    return text


def headline(cfg: Any, r: dict[str, Any]) -> list[tuple[str, Any]]:
    m = r["metrics"]
    rows = [
        (
            f"{impl}: time ~ n^p (forward / train)",
            f"{m.get(f'time_slope/{impl}/forward')} / {m.get(f'time_slope/{impl}/train')}",
        )
        for impl in cfg.impls
    ]
    rows += [
        (f"{impl}: peak memory ~ n^p (train)", m.get(f"memory_slope/{impl}/train"))
        for impl in cfg.impls
        if impl != "torch"
    ]
    budget = cfg.budgets_mib[-1]
    rows.append(
        (
            f"longest training context in {budget} MiB (" + " / ".join(cfg.impls) + ")",
            " / ".join(str(m[f"max_n_within_{budget}MiB/{impl}/train"]["predicted"]) for impl in cfg.impls),
        )
    )
    return rows[:6]


WORDS = Words(setup, summary, headline)
