"""Ranking stability against the number of pose samples: τ and top-k overlap on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from handflow.errors import HandflowError
from viewselect.stats.stability import kendall_tau, smallest_stable, stability_table


def test_kendall_tau_known_values():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    # one discordant pair of 6: (5 − 1) / 6
    assert kendall_tau([1, 2, 3, 4], [1, 2, 4, 3]) == pytest.approx(4 / 6)
    with pytest.raises(HandflowError):
        kendall_tau([1, 2], [1, 2, 3])


def table(values, seqs=("a", "b")):
    return pd.DataFrame([{"sequence": s, "camera": f"c{i}", "ambiguity_mm": v + j}
                         for j, s in enumerate(seqs) for i, v in enumerate(values)])


def test_stability_table():
    ref = table([1, 2, 3, 4, 5])
    out = stability_table({400: ref, 100: table([1, 2, 3, 5, 4]), 50: table([5, 4, 3, 2, 1])}, 400, top_k=2)
    assert out["samples"].tolist() == [50, 100]
    r100 = out.set_index("samples").loc[100]
    assert r100["kendall_tau_cameras"] == pytest.approx(8 / 10) and r100["top_k_overlap"] == 1.0
    r50 = out.set_index("samples").loc[50]
    assert r50["kendall_tau_cameras"] == pytest.approx(-1) and r50["top_k_overlap"] == 0.0
    assert smallest_stable(out, 0.75) == 100 and smallest_stable(out, 0.9) is None
    with pytest.raises(HandflowError, match="reference"):
        stability_table({100: ref}, 400)
    with pytest.raises(HandflowError, match="differ"):
        stability_table({400: ref, 100: table([1, 2, 3], seqs=("a",))}, 400)


def test_smallest_stable_needs_every_larger_count():
    t = pd.DataFrame({"samples": [25, 50, 100, 200], "kendall_tau_cameras": [0.96, 0.90, 0.97, 0.99]})
    assert smallest_stable(t) == 100
