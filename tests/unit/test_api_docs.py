"""docs/api.md is generated from the docstrings and must be current."""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_api_reference_is_current() -> None:
    generator = runpy.run_path(str(ROOT / "scripts" / "gen_api_docs.py"))
    expected = generator["render"]()
    assert (ROOT / "docs" / "api.md").read_text() == expected, (
        "docs/api.md is stale: run `.venv/bin/python scripts/gen_api_docs.py`"
    )
