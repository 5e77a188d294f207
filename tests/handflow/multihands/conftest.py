"""Fixtures of the MultiHands tests: the hand model, the tiny capture's test split, a small walk."""

from __future__ import annotations

import pytest
import torch

# Small enough for the tests' time budget, large enough that the walk accepts and rejects proposals.
SMALL_WALK = dict(per_image=8, iterations=3, proposals=32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """The walk is many small tensor operations: on shared cores two intra-op threads were measured
    ~20x slower than one (same reason :func:`handflow.synth.capture.synthesize` runs single-threaded)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def hand_model(tiny_data_root):
    from handflow.hand.model import HandModel
    from handflow.synth.mano import default_mano_dir

    return HandModel.from_dir(default_mano_dir())  # the synthetic MANO the tiny capture was generated with


@pytest.fixture(scope="session")
def tiny_test(tiny_data_root):
    from handflow.data.interhand import InterHandDataset

    return InterHandDataset(tiny_data_root, "test")


@pytest.fixture(scope="session")
def plaus(hand_model):
    from handflow.multihands.config import MultiHandsConfig
    from handflow.multihands.criteria import Plausibility

    return Plausibility(hand_model, MultiHandsConfig(**SMALL_WALK))


@pytest.fixture(scope="session")
def case(tiny_test, plaus):
    """``case(i)``: geometry, targets and ground-truth parameters ``(1,2,·)`` of tiny test item ``i``."""

    def make(i: int):
        it = tiny_test.items[i]
        hw = (int(it["height"]), int(it["width"]))
        g = tiny_test.geometry(i, hw)
        gt = tuple(torch.as_tensor(g[k], dtype=torch.float32)[None] for k in ("pose", "shape", "trans"))
        return g, plaus.targets(g, hw), gt

    return make
