"""`viewselect multihands-report`: the page and the command on the tiny capture."""

from __future__ import annotations

from handflow.data.interhand import InterHandDataset
from viewselect.multihands.report import write_multihands_report


def test_report_page(tmp_path, tiny_multihands_root):
    ds = InterHandDataset(tiny_multihands_root, "test", max_frames=2)
    out = tmp_path / "multihands.md"
    res = write_multihands_report(ds, out, "test")
    text = out.read_text()
    assert "acceptance rate" in text and "along the viewing ray" in text
    assert res["counts"]["annotated"] == len(ds)


def test_report_command(tmp_path, tiny_multihands_root, capsys, monkeypatch):
    from cli_runner import run_cli

    out = tmp_path / "mh.md"
    code, stdout, err = run_cli(["multihands-report", "--data-root", tiny_multihands_root, "--frames", "2",
                                 "--out", out], capsys, monkeypatch)
    assert code == 0, err
    assert "visible_depth_mm" in stdout
    text = out.read_text()
    assert "viewselect multihands-report" in text and "acceptance rate" in text
