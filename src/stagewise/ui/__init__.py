"""The execution explorer's HTML, CSS and ES modules (static/), served by api/routes/ui.py."""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
