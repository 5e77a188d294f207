"""`rank` end to end on the tiny capture: tables, cache reuse and invalidation, bad requests."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

import viewselect.engine.scoring as engine
from handflow.checkpoint import load_checkpoint, save_checkpoint
from handflow.errors import HandflowError
from viewselect.engine.scoring import RankConfig
from viewselect.ranking.pipeline import RankRequest, run_rank
from viewselect.outputs.tables import write_rank_result


def _req(root, model, **kw):
    return RankRequest(sequence="Capture0-1", data_root=str(root), model=str(model),
                       engine=RankConfig(samples=8, frames=2), **kw)


def test_rank_end_to_end(tmp_path, tiny_data_root, tiny_model):
    out = run_rank(_req(tiny_data_root, tiny_model, keep=3, error_vs_cameras=True))
    res = out.result
    assert len(res.cameras) == 8 and res.cameras["keep"].sum() == 3 and len(res.drop_list) == 5
    assert res.sequences["sequence"].nunique() == 7
    assert (res.sequences["ambiguity_mm"] > 0).all()
    # regret is zero for the best camera of every sequence
    assert (res.sequences.groupby("sequence")["regret_global_mm"].min().abs() < 1e-9).all()
    assert set(res.summary["ranker"]) >= {"ambiguity", "random", "visible_fraction", "oracle"}
    tri = out.triangulation
    assert tri["n_kept"] == 3 and 0 < tri["full_error_mm"] and 0 < tri["kept_error_mm"]
    # without pixel noise, DLT from the views that see a joint recovers it exactly (from the view cache)
    exact = run_rank(_req(tiny_data_root, tiny_model, keep=3, pixel_noise_px=0.0)).triangulation
    assert exact["full_error_mm"] < 1e-6 and exact["kept_error_mm"] < 1e-6
    paths = write_rank_result(tmp_path, res, out.provenance, extra=out.summary_extra(),
                              error_vs_cameras=out.error_vs_cameras)
    # one stream of random rigs: summary.json's random row is error_vs_cameras.csv's at the same K
    import json

    summary = json.loads(paths["summary.json"].read_text())["triangulation"]
    curve = pd.read_csv(paths["error_vs_cameras.csv"]).set_index(["strategy", "n_cameras"])
    assert summary["random_error_mm"] == pytest.approx(curve.loc[("random", 3), "triangulation_error_mm"], rel=1e-12)
    assert summary["random_failed_fraction"] == pytest.approx(curve.loc[("random", 3), "failed_fraction"], abs=1e-12)
    assert summary["kept_error_mm"] == pytest.approx(curve.loc[("ambiguity", 3), "triangulation_error_mm"], rel=1e-12)
    assert summary["full_error_mm"] == pytest.approx(curve.loc[("ambiguity", 8), "triangulation_error_mm"], rel=1e-12)
    csv = pd.read_csv(paths["ranking.csv"], dtype={"camera": str})
    xlsx = pd.read_excel(paths["ranking.xlsx"], sheet_name="cameras", dtype={"camera": str})
    assert csv["camera"].tolist() == xlsx.iloc[:, 0].astype(str).tolist()
    assert out.provenance["model_digest"] and out.provenance["version"]


def test_rank_is_deterministic_and_served_from_cache(tiny_data_root, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c1"))
    first = run_rank(_req(tiny_data_root, tiny_model))
    # recomputed from scratch (a fresh cache): the model really runs again and gives the same numbers
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c2"))
    calls = {"views": 0}
    real = engine.evaluate_batch

    def counting(model, views, cfg):
        calls["views"] += len(views)
        return real(model, views, cfg)

    monkeypatch.setattr(engine, "evaluate_batch", counting)
    again = run_rank(_req(tiny_data_root, tiny_model))
    assert calls["views"] == len(first.views) == 56
    pd.testing.assert_frame_equal(first.views, again.views, check_exact=True)

    def boom(*a, **k):
        raise AssertionError("cache miss")

    monkeypatch.setattr(engine, "evaluate_batch", boom)
    cached = run_rank(_req(tiny_data_root, tiny_model))
    pd.testing.assert_frame_equal(first.views, cached.views, check_exact=True)


def test_cache_invalidated_when_model_changes(tmp_path, tiny_data_root, tiny_model, monkeypatch):
    run_rank(_req(tiny_data_root, tiny_model))
    payload = load_checkpoint(tiny_model)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point() and "flow" in k)
    payload["state_dict"][name] = payload["state_dict"][name] + 0.01
    changed = tmp_path / "changed.pt"
    save_checkpoint(changed, {k: v for k, v in payload.items() if k != "format"})
    calls = _counting(monkeypatch)
    run_rank(_req(tiny_data_root, changed))
    assert calls["n"] > 0


def test_results_do_not_depend_on_batching(tiny_data_root, tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c1"))
    a = run_rank(RankRequest(sequence="Capture0", data_root=str(tiny_data_root), model=str(tiny_model),
                             engine=RankConfig(samples=8, frames=2, batch_images=2)))
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c2"))
    b = run_rank(RankRequest(sequence="Capture0", data_root=str(tiny_data_root), model=str(tiny_model),
                             engine=RankConfig(samples=8, frames=2, batch_images=64)))
    pd.testing.assert_frame_equal(a.views, b.views, rtol=1e-4)


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(drop=1, keep=2), "conflict"),
        (dict(sequence="Capture9"), "unknown capture"),
        (dict(sequence="Capture0/nope"), "unknown sequence"),
        (dict(cameras=["999999"]), "unknown camera"),
        (dict(alignment="sideways"), "alignment"),
        (dict(strategy="coverage"), "needs --keep"),
        (dict(keep=99), "out of range"),
    ],
)
def test_bad_requests(tiny_data_root, tiny_model, kw, match):
    base = dict(sequence="Capture0-1", data_root=str(tiny_data_root), model=str(tiny_model),
                engine=RankConfig(samples=4, frames=1))
    base.update(kw)
    with pytest.raises(HandflowError, match=match):
        run_rank(RankRequest(**base))


def test_model_that_does_not_load(tmp_path, tiny_data_root):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(HandflowError, match="bad.pt"):
        run_rank(_req(tiny_data_root, bad))
    torch.save({"format": "handflow-checkpoint/1", "kind": "other", "config": {}, "state_dict": {}}, bad)
    with pytest.raises(HandflowError, match="'other'"):
        run_rank(_req(tiny_data_root, bad))


def _other_model(tiny_model, path):
    """The tiny model with its weights scaled: another model, with other spreads."""
    payload = load_checkpoint(tiny_model)
    for k, v in payload["state_dict"].items():
        if v.is_floating_point() and v.ndim >= 2:
            payload["state_dict"][k] = v * 1.5
    save_checkpoint(path, {k: v for k, v in payload.items() if k != "format"})
    return path


def test_compare_model_adds_a_baseline_ranker(tmp_path, tiny_data_root, tiny_model):
    other = _other_model(tiny_model, tmp_path / "other.pt")
    out = run_rank(_req(tiny_data_root, tiny_model, compare_model=str(other)))
    # the baseline column is the compared model's own ambiguity, view by view, not the main model's
    alone = run_rank(_req(tiny_data_root, other)).views
    key = ["sequence", "camera"]
    got = out.views.set_index(key)["baseline_spread_mm"]
    want = alone.set_index(key)["ambiguity_mm"].reindex(got.index)
    pd.testing.assert_series_equal(got, want, check_names=False, rtol=1e-6)
    own = out.views.set_index(key)["ambiguity_mm"]
    assert ((got - own).abs() > 1e-3).all()  # another model: another spread in every view, beyond rounding
    s = out.result.summary
    assert {"ambiguity", "baseline_spread"} <= set(s.ranker)
    # the baseline ranker's Spearman correlation is that of its own scores (its ranking, not the flow's)
    per = out.result.sequences
    seq = per["sequence"].iloc[0]
    grp = per[per.sequence == seq]
    row = s[(s.ranker == "baseline_spread") & (s.sequence == seq) & (s.alignment == "global")]
    rho = grp["baseline_spread_mm"].rank().corr(grp["mpjpe_global_mm"].rank())
    assert row["spearman"].item() == pytest.approx(rho, abs=1e-9)


def test_checkpoint_of_another_architecture(tmp_path, tiny_data_root, tiny_model):
    payload = load_checkpoint(tiny_model)
    payload["config"]["model"]["flow_hidden"] = 48  # the weights are for hidden 32
    other = tmp_path / "other.pt"
    save_checkpoint(other, {k: v for k, v in payload.items() if k != "format"})
    with pytest.raises(HandflowError, match="does not fit this architecture"):
        run_rank(_req(tiny_data_root, other))


def _counting(monkeypatch):
    calls = {"n": 0}
    real = engine.evaluate_batch

    def counting(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    monkeypatch.setattr(engine, "evaluate_batch", counting)
    return calls


def test_cache_invalidated_by_another_hand_model(tmp_path, tiny_data_root, tiny_model, monkeypatch):
    """Another --mano-dir gives the numbers of an empty cache, never the previous hand model's."""
    import pickle

    from handflow.synth.mano import build_synthetic_mano

    right, left = build_synthetic_mano(0)
    other = tmp_path / "mano"
    other.mkdir()
    for name, hand in (("MANO_RIGHT.pkl", right), ("MANO_LEFT.pkl", left)):
        hand = {**hand, "v_template": hand["v_template"] * 1.2}  # a bigger hand: other lifted joints
        (other / name).write_bytes(pickle.dumps(hand, protocol=4))
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c1"))
    default = run_rank(_req(tiny_data_root, tiny_model))
    calls = _counting(monkeypatch)
    swapped = run_rank(_req(tiny_data_root, tiny_model, mano_dir=str(other)))
    assert calls["n"] > 0
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c2"))
    fresh = run_rank(_req(tiny_data_root, tiny_model, mano_dir=str(other)))
    pd.testing.assert_frame_equal(swapped.views, fresh.views)
    assert not default.views["ambiguity_mm"].equals(swapped.views["ambiguity_mm"])


def test_view_rescored_after_its_image_is_repaired(tmp_path, tiny_data_root, tiny_model, monkeypatch):
    """A view scored while one of its images was unreadable is recomputed once the image is back."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root)
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c1"))
    whole = run_rank(_req(root, tiny_model))
    image = sorted((root / "images" / "test").rglob("*.jpg"))[0]
    good = image.read_bytes()
    image.write_bytes(good[: len(good) // 3])  # truncated
    monkeypatch.setenv("VIEWSELECT_CACHE", str(tmp_path / "c2"))
    damaged = run_rank(_req(root, tiny_model))
    assert damaged.skipped_images == 1
    image.write_bytes(good)
    calls = _counting(monkeypatch)
    repaired = run_rank(_req(root, tiny_model))
    assert calls["n"] == 1 and repaired.skipped_images == 0  # only the repaired view is scored again
    pd.testing.assert_frame_equal(whole.views, repaired.views)


def test_coverage_strategy_selects_in_one_place(tiny_data_root, tiny_model):
    """--strategy coverage overrides the selection as the default rule does: the camera and sequence tables agree."""
    res = run_rank(_req(tiny_data_root, tiny_model, keep=4, strategy="coverage")).result
    kept = set(res.cameras.loc[res.cameras["keep"], "camera"])
    assert len(kept) == 4 and set(res.drop_list) == set(res.cameras["camera"]) - kept
    assert (res.sequences["keep_in_sequence"] == res.sequences["camera"].isin(kept)).all()
