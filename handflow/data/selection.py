"""Sequence selection specs: ``Capture0-1``, ``Capture3``, ``Capture0/SEQ_NAME`` and comma lists."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


def select_sequences(spec: str, available: dict[int, list[str]]) -> list[tuple[int, str]]:
    """Resolve a spec against ``{capture: [sequence names]}``; sorted (capture, sequence) pairs.

    A term naming a capture or sequence that does not exist is an error, as is an empty result.
    """
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
