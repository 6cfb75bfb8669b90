"""The README's walk-through runs exactly as written, against a live server."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.support.server import ServerHandle

pytestmark = [pytest.mark.sdk]

README = Path(__file__).resolve().parents[2] / "README.md"


def _run(code: str) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {})
    return out.getvalue().splitlines()


def test_readme_walkthrough_runs_twice(fresh_server: object, tmp_path: Path) -> None:
    server: ServerHandle = fresh_server(tmp_path / "data")  # type: ignore[operator]
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README should hold one walk-through block"
    code = blocks[0]
    assert 'HOST, KEY = "http://127.0.0.1:8000", "sk_local_admin"' in code
    # Only the address and the key differ from the README's: the test server's own.
    code = code.replace("http://127.0.0.1:8000", server.base_url).replace(
        "sk_local_admin", server.admin_key
    )
    uri = "mixpeek://text_extractor@v1/all_minilm_l6_v2"
    expected = [
        uri,
        "3",
        "['Margherita pizza', 'Slow-cooked beef ragu']",
        "Margherita pizza",
        str(sorted([f"bm25:{uri}", f"dense:{uri}"])),
        "1",
        "{'search': (3, 3), 'italian': (3, 2)}",
        "404 retriever_not_found",
    ]
    # A newcomer runs it, then runs it again on the same server: the same answers.
    assert _run(code) == expected
    assert _run(code) == expected
