"""What checking an exercise gives back: one row per check (name, passed, hint), as text, JSON and an HTML table."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CheckResult:
    """One check. When it failed: ``hint`` says why (the diagnosed mistake's title and hint, or what the check is
    about), ``mistake`` is the catalogue id of the mistake diagnosed (or None), ``detail`` what was observed."""

    name: str
    passed: bool
    hint: str = ""
    mistake: str | None = None
    detail: str = ""

    def text(self) -> str:
        """The hint and what was observed, on one line."""
        if self.hint and self.detail:
            return f"{self.hint} [{self.detail}]"
        return self.hint or self.detail

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "hint": self.hint,
            "mistake": self.mistake,
            "detail": self.detail,
        }


@dataclass
class Result:
    """Every check of one exercise on one function.

    ``error`` is one line when the function could not be checked at all (not implemented, wrong signature,
    wrong output type, shape or dtype on the first basic call, sys.exit, a file that does not load, a time
    limit); ``checks`` then holds the checks that ran before it. ``seed`` reproduces the random inputs.
    """

    exercise: str
    checks: list[CheckResult]
    error: str | None = None
    seed: int | None = None
    contract: CheckResult | None = None  # the failed first call, when that is the error
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. the file checked

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def mistakes(self) -> list[str]:
        """The catalogue ids diagnosed, in check order, each once."""
        found = [c.mistake for c in [*self.checks, *([self.contract] if self.contract else [])] if c.mistake]
        return list(dict.fromkeys(found))

    def summary(self) -> str:
        if self.error is not None:
            return self.error
        n = sum(c.passed for c in self.checks)
        verdict = "all checks pass" if self.passed else f"{n} of {len(self.checks)} checks pass"
        return f"{self.exercise}: {verdict} (seed {self.seed})"

    def _hints(self) -> list[str]:
        """Each check's hint column; a mistake named again is referred to the row above."""
        seen: set[str] = set()
        out = []
        for c in self.checks:
            if c.passed:
                out.append("")
            elif c.mistake is not None and c.mistake in seen:
                out.append(f"the same mistake as above [{c.detail}]" if c.detail else "the same mistake as above")
            else:
                out.append(c.text())
                if c.mistake is not None:
                    seen.add(c.mistake)
        return out

    def table(self) -> str:
        """A plain-text table: check, pass/FAIL, hint."""
        lines = [self.summary()]
        if not self.checks:
            return lines[0]
        width = max(len(c.name) for c in self.checks)
        lines.append(f"  {'check':<{width}}  result  hint")
        for c, hint in zip(self.checks, self._hints(), strict=True):
            lines.append(f"  {c.name:<{width}}  {'pass' if c.passed else 'FAIL':<6}  {hint}".rstrip())
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "exercise": self.exercise,
            "passed": self.passed,
            "error": self.error,
            "seed": self.seed,
            "checks": [c.to_json() for c in self.checks],
            "mistakes": self.mistakes,
            "contract": None if self.contract is None else self.contract.to_json(),
            **self.extra,
        }

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:  # what a console shows for `check(...)`: the table, not the fields
        return self.table()

    def _repr_html_(self) -> str:
        """The table for a notebook: one row per check, failures in red with their hint."""
        esc = html.escape
        head = f"<p><b>{esc(self.summary())}</b></p>"
        if not self.checks:
            return f'<div class="attnlab-check">{head}</div>'
        rows = []
        for c, hint in zip(self.checks, self._hints(), strict=True):
            colour = "#1a7f37" if c.passed else "#cf222e"
            mark = "pass" if c.passed else "FAIL"
            rows.append(
                f'<tr><td style="text-align:left">{esc(c.name)}</td>'
                f'<td style="color:{colour};font-weight:bold">{mark}</td>'
                f'<td style="text-align:left">{esc(hint)}</td></tr>'
            )
        return (
            f'<div class="attnlab-check">{head}<table><thead><tr><th style="text-align:left">check</th>'
            f'<th>result</th><th style="text-align:left">hint</th></tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></div>"
        )
