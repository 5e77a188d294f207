"""The engine's bounded-memory pieces: sample chunks, streaming spread, prefetched view loading."""

from __future__ import annotations

import pytest
import torch

from handflow.errors import HandflowError
from handflow.metrics import sample_std
from viewselect.engine.scoring import RankConfig, evaluate_batch
from viewselect.engine.noise import chunks as _chunks
from viewselect.engine.prefetch import Prefetch as _Prefetch
from viewselect.engine.streaming import SampleSpread as _Spread


@pytest.mark.parametrize("n_images,n_samples,max_rows", [(5, 7, 100), (5, 7, 7), (5, 7, 15), (3, 10, 4), (1, 2, 1)])
def test_chunks_cover_every_image_and_sample_once(n_images, n_samples, max_rows):
    seen = torch.zeros(n_images, n_samples, dtype=torch.int64)
    for i0, i1, s0, s1 in _chunks(n_images, n_samples, max_rows):
        assert (i1 - i0) * (s1 - s0) <= max(max_rows, 1)
        seen[i0:i1, s0:s1] += 1
    assert bool((seen == 1).all())


def test_streaming_spread_equals_sample_std():
    g = torch.Generator().manual_seed(0)
    joints = torch.randn(4, 23, 42, 3, generator=g) * 30 + 1000  # far from the origin, as in world mm
    for max_rows in (23, 10, 1, 2):
        spread = _Spread(4, "cpu")
        for i0, i1, s0, s1 in _chunks(4, 23, max_rows * 23 if max_rows == 23 else max_rows):
            spread.add(i0, i1, joints[i0:i1, s0:s1])
        torch.testing.assert_close(spread.std(), sample_std(joints), rtol=1e-5, atol=1e-4)


def test_rank_config_rejects_bad_chunk_rows():
    with pytest.raises(HandflowError, match="chunk_rows"):
        RankConfig(chunk_rows=0)


@pytest.mark.parametrize("crops", [1, 6])
def test_rank_config_needs_two_to_five_crops(crops):
    with pytest.raises(HandflowError, match="crops must be between 2 and 5"):
        RankConfig(crops=crops)


def test_the_crop_count_is_part_of_the_cache_key():
    from viewselect.engine.viewcache import cache_key

    keys = {cache_key("m", "d", "h", 128, RankConfig(crops=c)) for c in (2, 4, 5)}
    assert len(keys) == 3
    assert cache_key("m", "d", "h", 128, RankConfig(chunk_rows=7)) == cache_key("m", "d", "h", 128, RankConfig())


def test_the_crop_set_is_part_of_the_cache_key(monkeypatch):
    """Another set of test-time crops of the same count gives another key (a cache of the former set is not read)."""
    import viewselect.engine.viewcache as vc
    from handflow.geometry.recrop import CropJitter

    before = vc.cache_key("m", "d", "h", 128, RankConfig())
    monkeypatch.setattr(vc, "TEST_TIME_CROPS", (CropJitter(),) + (CropJitter(1.12),) * 4)
    assert vc.cache_key("m", "d", "h", 128, RankConfig()) != before


def test_evaluate_batch_does_not_depend_on_chunking(tiny_data_root, tiny_model):
    from handflow.data.interhand import InterHandDataset
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir
    from handflow.model.registry import load_model

    model, _ = load_model(tiny_model, HandModel.from_dir(default_mano_dir()))
    ds = InterHandDataset(tiny_data_root, "test", crop_px=model.cfg.crop_px)
    capture, seqs = next(iter(ds.available().items()))
    views = [ds.load_view(capture, seqs[0], c) for c in ds.camera_ids(capture, seqs[0])[:3]]
    whole = evaluate_batch(model, views, RankConfig(samples=9))
    for rows in (9, 20, 4):  # whole images per chunk, several images, samples of one image split
        chunked = evaluate_batch(model, views, RankConfig(samples=9, chunk_rows=rows))
        for a, b in zip(chunked, whole):
            assert a.camera == b.camera
            for k in ("ambiguity_mm", "mpjpe_global_mm", "mpjpe_rrr_mm", "mpjpe_rr_mm"):
                assert getattr(a, k) == pytest.approx(getattr(b, k), rel=1e-5, abs=1e-5), (rows, k)
    # the plain (non-inference-plan) path gives the same numbers
    model.fast_inference = False
    plain = evaluate_batch(model, views, RankConfig(samples=9))
    for a, b in zip(plain, whole):
        assert a.ambiguity_mm == pytest.approx(b.ambiguity_mm, rel=1e-4)
        assert a.mpjpe_global_mm == pytest.approx(b.mpjpe_global_mm, rel=1e-4)


def test_prefetch_keeps_order_and_reraises_where_called():
    calls = []

    def load(x):
        calls.append(x)
        if x == 2:
            raise HandflowError("unreadable")
        return x * 10

    pre = _Prefetch(load, [0, 1, 2, 3], ahead=2)
    assert pre.result(0) == 0 and pre.result(1) == 10
    with pytest.raises(HandflowError, match="unreadable"):
        pre.result(2)
    assert pre.result(3) == 30
    pre.close()
    assert calls == [0, 1, 2, 3]
