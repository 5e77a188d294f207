"""The README's two set-up commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_commands():
    readme = (REPO / "README.md").read_text()
    head = readme[: readme.index("## Commands")]
    commands = re.findall(r"```bash\n(.+?)\n```", head)
    assert len(commands) == 2, "README must show exactly two set-up commands near the top"
    assert "viewselect rank --sequence Capture0-1" in commands[0] and "pytest" in commands[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    for cmd in commands:
        assert cmd in ci
