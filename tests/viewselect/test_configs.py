"""The configs ship inside the package: found through importlib.resources from any folder."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_configs_are_reached_through_the_package(tmp_path, monkeypatch):
    from viewselect.cli.app import config_path, configs_dir

    monkeypatch.chdir(tmp_path)  # not the repository
    assert configs_dir().resolve() == (REPO / "configs").resolve()
    for name in ("default", "paper", "multihands", "synth/tiny", "eval/handflow"):
        assert config_path(name).is_file(), name
    assert config_path("default").read_bytes() == (REPO / "configs" / "default.toml").read_bytes()


def test_every_config_is_package_data():
    """pyproject's package-data patterns reach every shipped TOML (a wheel would miss a deeper one)."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["viewselect"]
    shipped = {p for pat in patterns if pat.startswith("configs/") for p in (REPO / "viewselect").glob(pat)}
    every = set((REPO / "viewselect").glob("configs/**/*.toml"))
    assert every and every == shipped, sorted(str(p) for p in every - shipped)
