"""Pack §5: docs/erd.md is the ERD of the live schema, and this fails when it is stale."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from smsapp.db import Database
from smsapp.db.erd import render_erd

ERD_PATH = Path(__file__).resolve().parent.parent / "docs" / "erd.md"


async def test_it_matches_the_committed_erd_byte_for_byte(db: Database) -> None:
    rendered = (await render_erd(db)).encode("utf-8")
    committed = ERD_PATH.read_bytes() if ERD_PATH.exists() else b""
    if rendered != committed:
        diff = difflib.unified_diff(
            committed.decode("utf-8", "replace").splitlines(keepends=True),
            rendered.decode("utf-8").splitlines(keepends=True),
            fromfile="docs/erd.md (committed)",
            tofile="docs/erd.md (live schema)",
        )
        pytest.fail("docs/erd.md is stale: run `smsapp erd`\n" + "".join(diff), pytrace=False)
