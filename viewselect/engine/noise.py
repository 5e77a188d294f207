"""Base noise ``z`` per image, independent of batching, chunking, sharding and order.

A sampling scheme is ``"<shared by>-<draws>"`` (:data:`SCHEMES`):

* shared by ``independent``: every image (capture, sequence, camera, frame) draws its own noise;
  ``common``: every camera of a frame draws the *same* noise (common random numbers). The ranking
  compares cameras, so noise shared between them cancels out of the comparison: two cameras of one
  frame differ only through their images, not through their draws.
* draws ``normal``: ``N(0, 1)`` from ``numpy.random.default_rng(key)`` as ``(N, 218)``; ``sobol``: the
  first N points of the Sobol sequence (:class:`torch.quasirandom.SobolEngine`'s direction numbers) with
  a random linear matrix scramble and digital shift per key, through the normal inverse CDF — each point is N(0, I) on its own, and
  every coordinate's N values are stratified (exactly so at powers of two), which is most of what
  a spread (a second moment) needs; ``antithetic``: pairs ``h, -h`` of normal draws.

The draws of one key are a pure function of ``(seed, capture, sequence, camera or "*", frame)``
(:func:`seed_for`), and the first n of N samples do not depend on N; which images share a model call,
how samples are chunked, or how views are spread over processes never changes them.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
import torch

from handflow.errors import HandflowError
from handflow.model.pose_params import Y_DIM

SCHEMES = ("independent-normal", "independent-sobol", "independent-antithetic",
           "common-normal", "common-sobol", "common-antithetic")
SOBOL_BITS = 30  # torch's SobolEngine.MAXBIT: points are k / 2**30


def check_scheme(scheme: str) -> tuple[bool, str]:
    """``scheme`` -> ``(shared across cameras, draws)``; a :class:`HandflowError` if unknown."""
    if scheme not in SCHEMES:
        raise HandflowError(f"unknown sampling scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    shared, draws = scheme.split("-")
    return shared == "common", draws


def seed_for(seed: int, capture: int, seq: str, cam: str, frame: int | None = None) -> int:
    """A 63-bit generator seed for one key (``cam = "*"``: every camera of the frame)."""
    blob = f"{seed}|{capture}|{seq}|{cam}" + ("" if frame is None else f"|{frame}")
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "little") & ((1 << 63) - 1)


@functools.lru_cache(maxsize=8)
def _sobol_ints(n: int) -> np.ndarray:
    """The first ``n`` points of the (unscrambled) Sobol sequence of :class:`torch.quasirandom.SobolEngine`
    as 30-bit integers (point = integer / 2**30): ``(n, 218)`` int64."""
    u = torch.quasirandom.SobolEngine(Y_DIM).draw(n, dtype=torch.float64)
    return (u * 2.0**SOBOL_BITS).round().long().numpy()


def _scrambled_sobol(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 218)`` points in (0, 1): the Sobol points with a random linear matrix scramble (each binary
    digit plus a random combination of the more significant ones, mod 2; Matoušek 1998) and a random
    digital shift, both drawn from ``rng``. A linear scramble keeps every digital net a net, so every
    coordinate of the first 2**m points stays stratified; one scramble per key, so the scramble's own
    error (at small n some pairs of the 218 dimensions stay correlated) averages out over frames like
    Monte-Carlo noise. (``SobolEngine(scramble=True)`` scrambles alike but takes ~30 ms a scramble.)"""
    top = SOBOL_BITS - 1 - np.arange(SOBOL_BITS)  # bit position of digit k, most significant first
    above = ((1 << SOBOL_BITS) - 1) ^ ((1 << (top + 1)) - 1)  # bits of the digits more significant than k
    rows = (rng.integers(0, 1 << SOBOL_BITS, (Y_DIM, SOBOL_BITS)) & above) | (1 << top)  # (218, 30) rows of L
    shift = rng.integers(0, 1 << SOBOL_BITS, Y_DIM)
    x = _sobol_ints(n)[:, :, None]  # (n, 218, 1)
    digits = np.bitwise_count(x & rows[None]) & 1  # (n, 218, 30): digit k of L x
    ints = (digits.astype(np.int64) << top).sum(-1) ^ shift
    return (ints + 0.5) / 2.0**SOBOL_BITS  # mid-cell: u in (0, 1)


def base_draws(draws: str, key_seed: int, n: int) -> torch.Tensor:
    """``(n, 218)`` float32 standard-normal base noise of one key (``key_seed``: :func:`seed_for`)."""
    # numpy fills in order, so the first n of N draws do not depend on N (torch.randn's vectorised tail does)
    rng = np.random.default_rng(key_seed)
    if draws == "normal":
        return torch.from_numpy(rng.standard_normal((n, Y_DIM), dtype=np.float32))
    if draws == "antithetic":  # h0, -h0, h1, -h1, ...: the first n of N are the same pairs
        h = torch.from_numpy(rng.standard_normal((math.ceil(n / 2), Y_DIM), dtype=np.float32))
        return torch.stack([h, -h], dim=1).reshape(-1, Y_DIM)[:n]
    if draws == "sobol":
        return torch.special.ndtri(torch.from_numpy(_scrambled_sobol(rng, n))).float()
    raise HandflowError(f"unknown draws {draws!r}")


class ViewNoise:
    """The base noise of a batch of views (dicts with ``capture, seq, camera, frame``), drawn per key on
    first use and dropped once no later image needs it."""

    def __init__(self, views: list[dict], samples: int, seed: int, scheme: str):
        shared, self.draws = check_scheme(scheme)
        self.samples = samples
        self.keys = [seed_for(seed, v["capture"], v["seq"], "*" if shared else v["camera"], int(f))
                     for v in views for f in v["frame"]]  # one per image, in batch order
        self.last_use = {k: i for i, k in enumerate(self.keys)}
        self.drawn: dict[int, torch.Tensor] = {}

    def take(self, i0: int, i1: int, s0: int, s1: int) -> torch.Tensor:
        """Noise of images ``i0:i1`` (batch indices), samples ``s0:s1``: ``(i1-i0, s1-s0, 218)``."""
        parts = []
        for i in range(i0, i1):
            k = self.keys[i]
            if k not in self.drawn:
                self.drawn[k] = base_draws(self.draws, k, self.samples)
            parts.append(self.drawn[k][s0:s1])
        for k in {self.keys[i] for i in range(i0, i1)}:
            if self.last_use[k] < i1 and s1 == self.samples:  # bounded memory: no later chunk needs it
                del self.drawn[k]
        return torch.stack(parts)


def chunks(n_images: int, n_samples: int, max_rows: int):
    """``(i0, i1, s0, s1)`` covering images x samples with at most ``max_rows`` rows each (whole
    images together while one image fits, else one image's samples in slices)."""
    if n_samples <= max_rows:
        per = max_rows // n_samples
        for i0 in range(0, n_images, per):
            yield i0, min(i0 + per, n_images), 0, n_samples
    else:
        for i in range(n_images):
            for s0 in range(0, n_samples, max_rows):
                yield i, i + 1, s0, min(s0 + max_rows, n_samples)


__all__ = ["SCHEMES", "check_scheme", "seed_for", "base_draws", "ViewNoise", "chunks"]
