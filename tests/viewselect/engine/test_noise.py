"""viewselect/engine/noise.py: every base-noise scheme is deterministic per seed, independent of batching,
chunking and order, shares draws between cameras exactly when it says so, and gives the spread known
in closed form for a flow that is linear in z."""

from __future__ import annotations

import pytest
import torch

from handflow.errors import HandflowError
from handflow.keypoints import N_JOINTS
from handflow.model.pose_params import Y_DIM
from viewselect.engine.scoring import RankConfig, sample_spread
from viewselect.engine.noise import SCHEMES, ViewNoise, base_draws, chunks, seed_for
from viewselect.engine.viewcache import cache_key


def _views(cams=("400002", "400003", "400004"), frames=(0, 5, 9), seq="0001_touch", capture=0):
    return [{"capture": capture, "seq": seq, "camera": c, "frame": list(frames)} for c in cams]


def _all(noise: ViewNoise, n_images: int, n: int) -> torch.Tensor:
    return noise.take(0, n_images, 0, n)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_deterministic_per_seed(scheme):
    views = _views()
    a = _all(ViewNoise(views, 12, 7, scheme), 9, 12)
    b = _all(ViewNoise(views, 12, 7, scheme), 9, 12)
    c = _all(ViewNoise(views, 12, 8, scheme), 9, 12)
    assert a.shape == (9, 12, Y_DIM) and a.dtype == torch.float32 and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_independent_of_batching_chunking_and_order(scheme):
    views = _views()
    whole = _all(ViewNoise(views, 10, 3, scheme), 9, 10)
    for i, v in enumerate(views):  # each view alone, and the views in reverse order
        alone = _all(ViewNoise([v], 10, 3, scheme), 3, 10)
        assert torch.equal(alone, whole[3 * i:3 * i + 3])
    rev = _all(ViewNoise(views[::-1], 10, 3, scheme), 9, 10)
    assert torch.equal(rev, torch.cat([whole[6:9], whole[3:6], whole[0:3]]))
    for rows in (10, 25, 4, 1):  # the engine's chunks: whole images, several, one image's samples in slices
        noise = ViewNoise(views, 10, 3, scheme)
        got = torch.zeros_like(whole)
        for i0, i1, s0, s1 in chunks(9, 10, rows):
            got[i0:i1, s0:s1] = noise.take(i0, i1, s0, s1)
        assert torch.equal(got, whole), rows
    # the first n of N samples do not depend on N
    assert torch.equal(_all(ViewNoise(views, 4, 3, scheme), 9, 4), whole[:, :4])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_common_schemes_share_draws_between_cameras_of_a_frame_only(scheme):
    z = _all(ViewNoise(_views(), 8, 0, scheme), 9, 8).view(3, 3, 8, Y_DIM)  # (camera, frame, sample, 218)
    same_cam = torch.equal(z[0], z[1]) and torch.equal(z[0], z[2])
    assert same_cam == scheme.startswith("common-")
    assert not torch.allclose(z[0, 0], z[0, 1])  # frames never share
    other_seq = _all(ViewNoise(_views(seq="0002_other"), 8, 0, scheme), 9, 8)
    assert not torch.allclose(other_seq[0], z[0, 0])


def test_draws_have_the_shape_their_scheme_promises():
    anti = base_draws("antithetic", 11, 9)
    assert torch.equal(anti[1::2], -anti[0:8:2])
    sob = base_draws("sobol", 11, 64)  # 64 = 2**6 points: every coordinate has one point per 1/64 stratum
    strata = (torch.special.ndtr(sob.double()) * 64).floor().long()
    assert all(torch.equal(strata[:, d].sort().values, torch.arange(64)) for d in range(Y_DIM))
    assert not torch.equal(sob, base_draws("sobol", 12, 64))  # another key, another scramble and shift
    normal = base_draws("normal", 11, 4000)
    assert abs(float(normal.mean())) < 0.01 and abs(float(normal.var()) - 1) < 0.01


def test_unknown_scheme_and_cache_key():
    with pytest.raises(HandflowError, match="sampling scheme"):
        RankConfig(sampling="sobol")
    keys = {cache_key("m", "a", None, 128, RankConfig(sampling=s)) for s in SCHEMES}
    assert len(keys) == len(SCHEMES)  # the per-view cache never mixes schemes
    assert cache_key("m", "a", None, 128, RankConfig(chunk_rows=7)) == cache_key("m", "a", None, 128, RankConfig())


class LinearFlow:
    """``joints = b + (A_i z) (42, 3)`` per image i: the samples are Gaussian with covariance ``A_i A_iᵀ``,
    so each joint's ``sqrt(trace(cov))`` is the norm of its three rows of ``A_i``, known in closed form."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor):
        self.A, self.b = A, b  # (B, 126, 218), (B, 126)

    def predict_joints(self, ctx, K, z):
        idx = ctx[:, 0].long()  # ctx carries the image's index, so chunks pick their own rows of A
        y = torch.einsum("bkd,bnd->bnk", self.A[idx], z) + self.b[idx, None]
        return y.view(z.shape[0], z.shape[1], N_JOINTS, 3)

    def spread(self) -> torch.Tensor:
        """``(B,)`` mm, the exact mean over joints of ``sqrt(trace(cov))``."""
        return self.A.square().sum(-1).view(-1, N_JOINTS, 3).sum(-1).sqrt().mean(-1)


def _linear(n_images: int, seed: int = 0) -> LinearFlow:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(n_images, 126, 218, generator=g) * torch.rand(n_images, 1, 218, generator=g)  # uneven
    return LinearFlow(mix * 3.0, torch.randn(n_images, 126, generator=g) * 100 + 500)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spread_estimator_matches_the_closed_form(scheme):
    views = _views(cams=("1", "2"), frames=(0, 1, 2, 3))
    flow = _linear(8)
    ctx = torch.arange(8.0)[:, None]
    cfg = RankConfig(samples=512, sampling=scheme, chunk_rows=1000)
    std, group_std = sample_spread(flow, ctx, torch.zeros(8, 3, 3), ViewNoise(views, 512, 0, scheme), cfg)
    exact = flow.spread()
    torch.testing.assert_close(std, exact, rtol=0.02, atol=0)
    assert group_std.shape == (8, 10)
    torch.testing.assert_close(group_std.mean(-1), exact, rtol=0.05, atol=0)


def test_sobol_and_common_draws_reduce_the_error_of_a_comparison():
    """The errors the schemes exist for, on linear flows: where each coordinate of a joint moves with its own
    coordinate of z (the spread is a sum of E[z_k^2]), Sobol draws, stratified per coordinate, estimate the
    spread with less error than normal draws; common draws make two cameras whose maps differ by a scale
    compare exactly, whatever the draws (their ratio is the scale), where independent draws only get close."""
    n_img, N = 16, 64
    views = [{"capture": 0, "seq": "s", "camera": f"{i}", "frame": [0]} for i in range(n_img)]
    g = torch.Generator().manual_seed(1)
    scale = torch.rand(n_img, 126, generator=g) * 20 + 1
    diagonal = LinearFlow(torch.cat([torch.diag_embed(scale), torch.zeros(n_img, 126, Y_DIM - 126)], -1),
                          torch.zeros(n_img, 126))  # joint coordinate r = scale_r * z_r
    ctx, K = torch.arange(float(n_img))[:, None], torch.zeros(n_img, 3, 3)
    exact = diagonal.spread()
    err = {}
    for scheme in ("independent-normal", "independent-sobol"):
        std, _ = sample_spread(diagonal, ctx, K, ViewNoise(views, N, 0, scheme), RankConfig(samples=N, sampling=scheme))
        err[scheme] = float(((std - exact) / exact).square().mean().sqrt())
    # only somewhat less: z^2 is unbounded, and the outermost strata's points still vary (0.8 % vs 1.1 %)
    assert err["independent-sobol"] < 0.85 * err["independent-normal"], err
    flow = _linear(1, seed=1)
    pair = LinearFlow(torch.cat([flow.A[:1], 1.1 * flow.A[:1]]), torch.cat([flow.b[:1], flow.b[:1]]))
    two = [{"capture": 0, "seq": "s", "camera": c, "frame": [0]} for c in ("a", "b")]
    for scheme, exact_ratio in (("common-normal", True), ("independent-normal", False)):
        std, _ = sample_spread(pair, torch.arange(2.0)[:, None], torch.zeros(2, 3, 3), ViewNoise(two, N, 0, scheme),
                               RankConfig(samples=N, sampling=scheme))
        ratio = float(std[1] / std[0])
        assert (abs(ratio - 1.1) < 1e-5) == exact_ratio, (scheme, ratio)


def test_seed_for_keys_frames_and_cameras():
    assert seed_for(0, 0, "s", "*", 3) != seed_for(0, 0, "s", "*", 4) != seed_for(0, 0, "s", "c", 4)
    assert 0 <= seed_for(5, 1, "s", "c", 2) < 2**63
