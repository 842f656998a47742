"""``docs/exercises.md`` from the package itself: every exercise with its checks, and the catalogue of known mistakes
with the checks that catch each one (found by running it, with a fixed seed) and its hint.

Regenerate with ``python -m attnlab.exercises.docs > docs/exercises.md``.
"""

from __future__ import annotations

import sys

from attnlab import exercises
from attnlab.exercises.engine import run_checks

SEED = 0

INTRO = """# Exercises: implement it yourself, and let attnlab say what is wrong

Each exercise is one function with a precise contract. `attnlab exercises start NAME` writes its skeleton (the task,
the equation, the shapes, the signature, a body that raises `NotImplementedError`); `attnlab check NAME [FILE]` runs
every check on your function in a separate process with a time limit and prints a table (check, passed, hint); it
exits 0 only when every check passes (`--json` prints a machine-readable result for an autograder). In a notebook,
`attnlab.exercises.check(NAME, fn)` returns the same result as an HTML table (in-process, no time limit).
`attnlab exercises solution NAME` shows the reference solution: the library's own code, by file and line.

**Checks come from oracles, not from saved outputs.** Each check draws fresh random inputs (the seed is printed;
`--seed` replays a run) and compares your function with an independent reference: torch's own module or function
with the same weights (`torch.nn.LSTMCell`, `torch.nn.functional.scaled_dot_product_attention`,
`torch.nn.MultiheadAttention`, `torch.nn.TransformerEncoderLayer`, ...), a float64 reference written from the paper,
autograd, or `torch.autograd.gradcheck` where you write a backward; forward and gradients; odd shapes (T != S, T = 1,
batch 1, head size 59); low precision; and the properties (weights sum to 1, the future does not change a causal
output, padding changes nothing, a batch equals its examples one by one, cached decoding equals a full forward).
float32 comparisons use the default tolerances of `torch.testing.assert_close`.

**Hints name the mistake.** When a check fails, the known wrong implementations of that exercise (kept as code in
`attnlab.exercises`) are run on the same inputs; the one whose output (or error) matches yours is named, with a hint.
When none matches, the hint says what the check looked at and where your output differs.

**Status.** `attnlab exercises` lists the exercises by section with your status, read from files only: the
exercise's file in your folder (`attnlab-exercises/` by default, `--dir` to change it) and the result of the last
`attnlab check` of it, recorded beside it in `.attnlab-status.json` with the file's sha256 (so an edit since then
shows as "edited since last check").

**Isolation.** `attnlab check` runs your file in a child process: an infinite loop is stopped at the time limit
(`--timeout`, default 60 s, counted after torch is imported), and a crash, `sys.exit`, a syntax or import error (with
file and line), a missing function, a wrong signature, or an output of the wrong type, shape or dtype each give one
line and exit status 1. Unknown names and missing files are usage errors (exit status 2). Your files are only read;
`start` never overwrites a file without `--force`. A check that passes for the reference but would need torch's own
implementation is guarded: the functions that solve an exercise outright (e.g. torch's SDPA in
`scaled_dot_product_attention`) raise when called during its checks.
"""


def markdown() -> str:
    lines = [INTRO]
    rows = []
    for section, items in exercises.by_section().items():
        lines.append(f"## {section} {exercises.SECTIONS[section]}\n")
        for ex in items:
            lines += [f"### `{ex.name}`: {ex.title}\n", ex.task, "", f"- Equation: `{ex.equation}`"]
            lines += [f"- Signature: `{ex.signature}`", f"- Shapes: {ex.shapes}", "", "| check | what it does |"]
            lines.append("|---|---|")
            lines += [f"| {c.name} | {c.about} |" for c in ex.checks]
            lines.append("")
            for m in ex.mistakes:
                r = run_checks(ex, m.fn, SEED)
                failed = [c.name for c in r.checks if not c.passed] or (["shape and dtype"] if r.error else [])
                named = m.id in r.mistakes
                caught = ", ".join(failed[:3]) + (f" (+{len(failed) - 3})" if len(failed) > 3 else "")
                rows.append((ex.name, m.id, m.title, caught, "yes" if named else "no", m.hint))
    lines += [
        "## The catalogue of known mistakes\n",
        f"Each mistake was run as a learner's solution (seed {SEED}): the checks it failed, and whether the diagnosis "
        "named it.\n",
        "| exercise | mistake | title | caught by | named | hint |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {e} | `{i}` | {t} | {c} | {n} | {h.replace('|', '/')} |" for e, i, t, c, n, h in rows]
    named = sum(r[4] == "yes" for r in rows)
    lines.append(f"\n{len(rows)} mistakes over {len(exercises.names())} exercises; {named} named by their own hint.\n")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(markdown())
