"""Sequence specs: ranges, single captures, named sequences, lists, and every bad spec an error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handflow.data.selection import SelectionTerm, parse_selection, pick_frames, select_sequences
from handflow.errors import HandflowError

AVAILABLE = {0: ["a", "b"], 1: ["c"], 3: ["d", "e"]}


def test_parse_forms():
    assert parse_selection("Capture0-1") == (SelectionTerm(0, 1),)
    assert parse_selection("Capture3") == (SelectionTerm(3, 3),)
    assert parse_selection("Capture0/ROM04_LT_Occlusion") == (SelectionTerm(0, 0, "ROM04_LT_Occlusion"),)
    assert parse_selection(" Capture0/a , Capture3 ") == (SelectionTerm(0, 0, "a"), SelectionTerm(3, 3))


def test_select_against_available():
    assert select_sequences("Capture0-1", AVAILABLE) == [(0, "a"), (0, "b"), (1, "c")]
    assert select_sequences("Capture3", AVAILABLE) == [(3, "d"), (3, "e")]
    assert select_sequences("Capture0/b,Capture1", AVAILABLE) == [(0, "b"), (1, "c")]
    assert select_sequences("Capture0-3", AVAILABLE) == [(0, "a"), (0, "b"), (1, "c"), (3, "d"), (3, "e")]


@pytest.mark.parametrize("spec, match", [
    ("", "empty"),
    ("Capture", "bad sequence spec"),
    ("capture0", "bad sequence spec"),
    ("Capture1-0", "empty"),
    ("Capture0-1/a", "single capture"),
    ("Capture0/", "bad sequence spec"),
    ("Capture0,,Capture1", "bad sequence spec"),
])
def test_bad_specs(spec, match):
    with pytest.raises(HandflowError, match=match):
        parse_selection(spec)


@pytest.mark.parametrize("spec, match", [
    ("Capture2", "unknown capture Capture2"),
    ("Capture0/zz", "unknown sequence Capture0/zz"),
    ("Capture4-9", "selects nothing"),
])
def test_specs_that_select_nothing(spec, match):
    with pytest.raises(HandflowError, match=match):
        select_sequences(spec, AVAILABLE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_fuzz_only_project_errors(spec):
    try:
        pairs = select_sequences(spec, AVAILABLE)
    except HandflowError as err:
        assert "\n" not in str(err)
    else:
        assert pairs and all(c in AVAILABLE and s in AVAILABLE[c] for c, s in pairs)


def test_no_spec_selects_everything():
    assert select_sequences(None, AVAILABLE) == [(0, "a"), (0, "b"), (1, "c"), (3, "d"), (3, "e")]


def test_frames_evenly_spaced_first_and_last_included():
    frames = [10, 11, 12, 13, 14, 15, 16]
    assert pick_frames(frames, 1) == [10]  # N = 1: exactly the first frame (the evaluation report relies on it)
    assert pick_frames(frames, 2) == [10, 16]
    assert pick_frames(frames, 3) == [10, 13, 16]
    assert pick_frames(frames, 7) == frames and pick_frames(frames, 99) == frames and pick_frames(frames, None) == frames
    for n in range(1, 8):
        got = pick_frames(frames, n)
        assert len(got) == n and got == sorted(set(got)) and got[0] == 10 and (n == 1 or got[-1] == 16)


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_frames_must_be_a_positive_count(n):
    with pytest.raises(HandflowError, match="--frames must be at least 1"):
        pick_frames([1, 2, 3], n)
