"""What the CLI tests share: the check that a user error came out as one line, not a traceback."""

from __future__ import annotations

import pytest


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("attnlab: error: ")
    assert "Traceback" not in err
    return err
