"""The import-linter contracts in pyproject.toml hold: data flows one way through the layers
(docs/ARCHITECTURE.md), the library never imports the product, the report never loads a model or data."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    from importlinter import cli  # in the [test] extras: pip install -e '.[test]'

    assert cli.lint_imports(config_filename=str(REPO / "pyproject.toml")) == 0, \
        "an import crosses a layer the wrong way: see the `lint-imports` output above"
