"""`stagewise --version` prints the package's version and exits before any command runs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from stagewise import __version__
from stagewise.cli import app

pytestmark = [pytest.mark.unit]


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"stagewise {__version__}\n"
