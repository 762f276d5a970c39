"""mypy rejects messages that an ActorRef[M] does not accept (docs/semantics.md §12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent


def test_wrong_messages_fail_mypy() -> None:
    source = HERE / "wrong_message.py"
    expected = {
        number
        for number, line in enumerate(source.read_text().splitlines(), start=1)
        if "  # E:" in line
    }
    stdout, _, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir=/dev/null", str(source)]
    )
    errors = {
        int(match.group(1)): line
        for line in stdout.splitlines()
        if (match := re.match(rf".*{source.name}:(\d+): error:", line))
    }
    assert status == 1, stdout
    assert set(errors) == expected, stdout
    assert "incompatible type" in errors[min(expected)]
