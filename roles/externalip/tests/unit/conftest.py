"""pytest set-up for the role's filter and action plugins: they import as plain modules."""

import json
import pathlib
import sys

import pytest

ROLE = pathlib.Path(__file__).resolve().parents[2]
REPO = ROLE.parents[1]
sys.path.insert(0, str(ROLE / "filter_plugins"))
sys.path.insert(0, str(ROLE / "action_plugins"))


@pytest.fixture
def table():
    """A shared case table from test/fixtures (the CLI's tests run the same one)."""
    return lambda name: json.loads((REPO / "test" / "fixtures" / name).read_text())
