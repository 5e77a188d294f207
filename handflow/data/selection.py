"""What part of a split a command reads: the ``--sequence`` spec and the ``--frames`` count.

Both options mean the same in every command, and are applied here only:

* ``--sequence`` — ``Capture0-1``, ``Capture3``, ``Capture0/SEQ_NAME`` or a comma list of these,
  resolved against what a split holds by :func:`select_sequences` (``None``: every sequence).
  :class:`~handflow.data.interhand.InterHandDataset` calls it for its ``selection``; commands then use
  the dataset's resolved ``sequences()`` instead of reading the spec again.
* ``--frames N`` — N evenly spaced frames of each sequence, its first and last included (N = 1: the
  first frame; N at least the sequence's length: all of them), by :func:`pick_frames`.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass

import numpy as np

from handflow.errors import HandflowError

_TERM = re.compile(r"^Capture(\d+)(?:-(\d+))?(?:/(.+))?$")


@dataclass(frozen=True)
class SelectionTerm:
    first_capture: int
    last_capture: int
    sequence: str | None = None

    def matches(self, capture: int, sequence: str) -> bool:
        if not self.first_capture <= capture <= self.last_capture:
            return False
        return self.sequence is None or self.sequence == sequence


def parse_selection(spec: str) -> tuple[SelectionTerm, ...]:
    """Parse a spec; raises HandflowError naming the bad term.

    ``Capture0-1`` selects captures 0 to 1 inclusive; ``Capture0/SEQ`` one sequence of one capture.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise HandflowError("empty sequence spec (expected e.g. Capture0-1, Capture3, Capture0/SEQ_NAME)")
    terms = []
    for raw in spec.split(","):
        term = raw.strip()
        m = _TERM.match(term)
        if not m:
            raise HandflowError(
                f"bad sequence spec term {term!r} (expected Capture<N>, Capture<A>-<B> or Capture<N>/<sequence>)"
            )
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first:
            raise HandflowError(f"bad sequence spec term {term!r}: capture range {first}-{last} is empty")
        if m.group(3) is not None and m.group(2) is not None:
            raise HandflowError(f"bad sequence spec term {term!r}: a sequence name needs a single capture")
        seq = m.group(3)
        if seq is not None and (not seq.strip() or "/" in seq):
            raise HandflowError(f"bad sequence spec term {term!r}: bad sequence name")
        terms.append(SelectionTerm(first, last, seq))
    return tuple(terms)


def select_sequences(spec: str | None, available: dict[int, list[str]]) -> list[tuple[int, str]]:
    """Resolve a ``--sequence`` spec against ``{capture: [sequence names]}``; sorted (capture, sequence)
    pairs. ``None`` selects every sequence of ``available``.

    A term naming a capture or sequence that does not exist is an error, as is an empty result.
    """
    if spec is None:
        return sorted((int(c), str(s)) for c, seqs in available.items() for s in seqs)
    terms = parse_selection(spec)
    chosen = set()
    for term in terms:
        hit = False
        if term.first_capture == term.last_capture and term.first_capture not in available:
            raise HandflowError(f"unknown capture Capture{term.first_capture} (available: {_fmt(available)})")
        # iterate over what exists, not over the range: Capture0-999999999 must not loop for ever
        for cap in sorted(c for c in available if term.first_capture <= c <= term.last_capture):
            for seq in available[cap]:
                if term.matches(cap, seq):
                    chosen.add((cap, seq))
                    hit = True
        if term.sequence is not None and not hit:
            raise HandflowError(f"unknown sequence Capture{term.first_capture}/{term.sequence}")
        if not hit:
            raise HandflowError(f"sequence spec Capture{term.first_capture}-{term.last_capture} selects nothing "
                                f"(available: {_fmt(available)})")
    return sorted(chosen)


def _fmt(available: dict[int, list[str]]) -> str:
    return ", ".join(f"Capture{c}" for c in sorted(available)) or "none"


def pick_frames(frames, n: int | None) -> list[int]:
    """``--frames N``: N evenly spaced of a sequence's ``frames`` (sorted frame ids), the first and the
    last included; N = 1 gives the first frame, ``None`` or N >= len(frames) all of them."""
    frames = list(frames)
    if n is None:
        return frames
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise HandflowError(f"--frames must be at least 1, found {n!r}")
    if n >= len(frames):
        return frames
    idx = np.linspace(0, len(frames) - 1, int(n)).round().astype(int)  # spacing >= 1: no index twice
    return [frames[i] for i in idx]
