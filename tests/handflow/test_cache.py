from handflow.cache import cache_dir


def test_default_cache_location(monkeypatch, tmp_path):
    monkeypatch.delenv("VIEWSELECT_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "viewselect"
    monkeypatch.setenv("VIEWSELECT_CACHE", "")  # empty: the default
    assert cache_dir() == tmp_path / ".cache" / "viewselect"


def test_cache_location_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("VIEWSELECT_CACHE", "~/elsewhere")
    assert cache_dir() == tmp_path / "elsewhere"
