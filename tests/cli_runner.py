"""``viewselect ARGS`` through the console script's ``main`` in-process: (exit code, stdout, stderr)."""

from __future__ import annotations

import sys


def run_cli(args, capsys, monkeypatch) -> tuple[int, str, str]:
    from viewselect import cli

    monkeypatch.setattr(sys, "argv", ["viewselect", *map(str, args)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as ex:
        code = ex.code if isinstance(ex.code, int) else 1
    cap = capsys.readouterr()
    return code, cap.out, cap.err
