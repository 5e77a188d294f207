"""`viewselect report`: self-contained HTML, escaping, a headless browser, Markdown folder, the CLI."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank
from viewselect.outputs.build import build_report
from viewselect.outputs.render import Figure, render_html, render_markdown
from viewselect.outputs.report import ReportRequest, report_content

CHROMIUM = "/usr/bin/chromium"
EVIL = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


def _rank_req(root, model, **kw):
    return RankRequest(sequence="Capture0-1", data_root=str(root), model=str(model),
                       engine=RankConfig(samples=8, frames=2), **kw)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory, tiny_data_root, tiny_model) -> Path:
    out = tmp_path_factory.mktemp("report") / "view-report.html"
    path, _ = build_report(ReportRequest(rank=_rank_req(tiny_data_root, tiny_model, drop=2), out=str(out),
                                         overlay_samples=12, random_orders=20))
    assert path == out
    return out


def _png_stats(data: bytes) -> tuple[tuple[int, int], float]:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.size, float(np.asarray(img.convert("L"), float).std())


def test_html_is_self_contained_with_real_figures(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    srcs = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", text)
    # dome 3D + map, ranking, regret curve, triangulation, one overlay per sequence (7)
    assert len(srcs) >= 5 + 7
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        size, std = _png_stats(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert min(size) >= 200, size
        assert std > 10, f"blank-looking figure (pixel std {std:.1f})"
    for needle in ("Camera dome", "Ranker summary", "Regret per sequence", "Provenance", "HandFlowNet ambiguity",
                   "Capture0/0001_touch_fingertips", "model_digest"):
        assert needle in text


@pytest.fixture(scope="module")
def tiny_outcome(tiny_data_root, tiny_model):
    return run_rank(_rank_req(tiny_data_root, tiny_model))


def test_names_are_escaped_not_executed(tiny_outcome):
    res = tiny_outcome.result
    per = res.sequences.copy()
    per["sequence"] = per["sequence"].where(per["sequence"] != per["sequence"].iloc[0], "Capture0/" + EVIL)
    per["camera"] = per["camera"].where(per["camera"] != per["camera"].iloc[0], EVIL)
    cams = res.cameras.copy()
    cams["camera"] = cams["camera"].where(cams["camera"] != res.sequences["camera"].iloc[0], EVIL)
    summary = res.summary.copy()
    summary["sequence"] = summary["sequence"].where(summary["sequence"] != res.sequences["sequence"].iloc[0],
                                                    "Capture0/" + EVIL)
    outcome = replace(tiny_outcome, result=replace(res, sequences=per, cameras=cams, summary=summary,
                                                   drop_list=[EVIL]),
                      provenance={**tiny_outcome.provenance, "command": f"viewselect report {EVIL}",
                                  "model": EVIL})
    content = report_content(outcome, {"dome": [Figure("dome-3d", f"caption {EVIL}", b"\x89PNG fake")]})
    text = render_html(content)
    assert "<script" not in text.lower() and "<img src=x" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&gt;" in text
    assert text.count("&lt;script&gt;") >= 5  # sequence, camera, drop list, command, model, caption
    md, _ = render_markdown(content)
    assert "<script" not in md and "&lt;script&gt;" in md


def test_markdown_folder(tmp_path, tiny_data_root, tiny_model):
    out = tmp_path / "md-report"
    req = ReportRequest(rank=_rank_req(tiny_data_root, tiny_model), out=str(out), format="md",
                        overlay_samples=6, triangulation=False, random_orders=5)
    assert build_report(req)[0] == out
    md = (out / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(links) >= 4 + 7
    for rel in links:
        size, std = _png_stats((out / rel).read_bytes())
        assert min(size) >= 200 and std > 10
    assert "| camera |" in md or "| rank | camera |" in md
    # rewriting replaces the folder as a whole and leaves no temporary folder behind
    (out / "figures" / "stale.png").write_bytes(b"x")
    build_report(req)
    assert not (out / "figures" / "stale.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["md-report"]
    # a folder that is not an earlier report is never replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    from handflow.errors import HandflowError

    with pytest.raises(HandflowError, match="not an earlier"):
        build_report(replace(req, out=str(other)))
    assert (other / "keep.txt").read_text() == "mine"


def test_opens_in_headless_chromium(html_report, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium): browser check skipped")
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
           "--enable-logging=stderr", "--v=0", f"--log-net-log={tmp_path / 'net.json'}",
           html_report.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    console = [ln for ln in p.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert not [ln for ln in console if "Uncaught" in ln or "ERROR" in ln or "Failed to load" in ln], console
    assert not re.search(r"net::ERR_|Failed to load resource", p.stderr), p.stderr[-2000:]
    # the page requests nothing from the network (Chromium's own calls to Google hosts aside)
    net = (tmp_path / "net.json").read_text(errors="replace") if (tmp_path / "net.json").exists() else ""
    hosts = set(re.findall(r"\b(?:https?|wss?)://([A-Za-z0-9.-]+)", net))
    assert not {h for h in hosts if not re.search(r"(^|\.)(google|gstatic|googleapis)\.com$", h)}, hosts
    size, std = _png_stats(shot.read_bytes())
    assert size == (1280, 2000) and std > 10


def run_cli(*args, check=True):
    env = {**os.environ, "VIEWSELECT_PROGRESS": "0"}
    p = subprocess.run([sys.executable, "-m", "viewselect", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def test_report_command(tmp_path, tiny_data_root, tiny_model):
    out = tmp_path / "r.html"
    common = ["--data-root", tiny_data_root, "--model", tiny_model, "--samples", "8", "--frames", "1",
              "--overlay-samples", "5", "--no-triangulation"]
    r = run_cli("report", "--html", "--sequence", "Capture0", "--keep", "3", "--out", out, *common)
    assert str(out) in r.stdout and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    bad = run_cli("report", "--html", "--sequence", "Capture7", "--out", tmp_path / "bad.html", *common,
                  check=False)
    assert bad.returncode == 2 and "Capture7" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.html").exists()
    conflict = run_cli("report", "--html", "--format", "md", "--out", tmp_path / "c", *common, check=False)
    assert conflict.returncode == 2 and "conflict" in conflict.stderr and not (tmp_path / "c").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]  # no temporary files left behind

