"""Streaming reader for huge JSON files: the values at a given depth, one at a time.

InterHand2.6M's annotation files are single JSON documents of hundreds of MB to GB
(``{"images": [...], "annotations": [...]}``, ``{capture: {frame: {...}}}``). :func:`iter_values`
walks the outer containers with a small hand-written scanner and hands each value at the requested
depth to the standard library's C decoder (``json.JSONDecoder.raw_decode``), so memory holds one
read buffer and one value, and decoding runs at C speed. (``ijson`` would do the walking too, but its
pure-Python backend is far slower than this and its C backend needs a system yajl: not worth a
dependency.)

Errors are :class:`~handflow.errors.HandflowError` with the same wording as
:func:`handflow.io.read_json`: ``missing file``, ``empty JSON file``, ``corrupt JSON in PATH: ...
line N column M``, ``PATH: expected a JSON dict``; NaN and Infinity are rejected.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from handflow.errors import HandflowError
from handflow.io import _reject_constant

_WS = " \t\n\r"
_CHUNK = 1 << 22  # characters read at a time
_MAX_VALUE = 1 << 28  # a single value this large (characters) is not one of ours: report the file as corrupt


class _Scanner:
    def __init__(self, path: Path, progress: Callable[[int], None] | None):
        self.path = path
        self.fh = open(path, encoding="utf-8", newline="")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lines_before = 0  # newlines in the text already dropped from the buffer
        self.chars_before = 0
        self.col_before = 0  # characters after the last dropped newline
        self.bytes_read = 0
        self.progress = progress
        self.decoder = json.JSONDecoder(parse_constant=_reject_constant)

    def close(self) -> None:
        self.fh.close()

    def _more(self) -> bool:
        if self.eof:
            return False
        try:
            text = self.fh.read(_CHUNK)
        except (OSError, UnicodeDecodeError) as err:
            raise HandflowError(f"cannot read {self.path}: {err}") from err
        if not text:
            self.eof = True
            return False
        if self.pos > _CHUNK:  # drop what was consumed (only now: positions stay valid at the end of the file)
            dropped = self.buf[: self.pos]
            nl = dropped.rfind("\n")
            self.col_before = len(dropped) - nl - 1 if nl >= 0 else self.col_before + len(dropped)
            self.lines_before += dropped.count("\n")
            self.chars_before += len(dropped)
            self.buf = self.buf[self.pos:]
            self.pos = 0
        self.buf += text
        if self.progress is not None:
            self.progress(self.fh.buffer.tell())
        return True

    def error(self, msg: str, pos: int | None = None) -> HandflowError:
        pos = self.pos if pos is None else pos
        line = self.lines_before + self.buf.count("\n", 0, pos) + 1
        nl = self.buf.rfind("\n", 0, pos)
        col = pos - nl if nl >= 0 else self.col_before + pos + 1
        return HandflowError(f"corrupt JSON in {self.path}: {msg}: line {line} column {col} "
                             f"(char {self.chars_before + pos})")

    def peek(self) -> str:
        """Next non-blank character ('' at the end of the file), not consumed."""
        while True:
            n = len(self.buf)
            while self.pos < n and self.buf[self.pos] in _WS:
                self.pos += 1
            if self.pos < n:
                return self.buf[self.pos]
            if not self._more():
                return ""

    def expect(self, chars: str) -> str:
        c = self.peek()
        if c == "" or c not in chars:
            raise self.error("Expecting " + " or ".join(repr(x) for x in chars) if c else "Unexpected end of file")
        self.pos += 1
        return c

    def value(self):
        """Decode the next complete value with the C decoder, reading more text as needed."""
        self.peek()
        while True:
            try:
                obj, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if len(self.buf) - self.pos < _MAX_VALUE and self._more():
                    continue
                raise self.error(err.msg, err.pos) from None
            except ValueError as err:  # NaN / Infinity
                raise HandflowError(f"corrupt JSON in {self.path}: {err}") from None
            if end == len(self.buf) and self._more():  # a number may go on in the next chunk
                continue
            self.pos = end
            return obj


def iter_values(path: str | os.PathLike, depth: int, want: Callable[[tuple], bool] | None = None,
                progress: Callable[[int], None] | None = None) -> Iterator[tuple[tuple, object]]:
    """``(key path, value)`` for every value ``depth`` levels below the top-level object of ``path``.

    Keys are ``str`` for object members and ``int`` for array positions, e.g. ``("images", 0)``.
    ``want(key path)`` (at depths above ``depth``) prunes: a container it rejects is skipped whole.
    A scalar met above ``depth`` is yielded with its shorter path, for the caller to reject.
    ``progress(bytes read)`` is called as the file is read.
    """
    path = Path(path)
    if not path.is_file():
        raise HandflowError(f"missing file: {path}")
    sc = _Scanner(path, progress)
    try:
        first = sc.peek()
        if first == "":
            raise HandflowError(f"empty JSON file: {path}")
        if first != "{":
            found = type(sc.value()).__name__
            raise HandflowError(f"{path}: expected a JSON dict, found {found}")
        yield from _walk(sc, depth, (), want)
        if sc.peek() != "":
            raise sc.error("Extra data")
    finally:
        sc.close()


def _walk(sc: _Scanner, depth: int, path: tuple, want) -> Iterator[tuple[tuple, object]]:
    """The container at the scanner's position, whose values lie ``depth`` levels further down."""
    opening = sc.expect("{[")
    closing = "}" if opening == "{" else "]"
    if sc.peek() == closing:
        sc.pos += 1
        return
    i = 0
    while True:
        if opening == "{":
            if sc.peek() != '"':
                raise sc.error("Expecting property name enclosed in double quotes")
            key = sc.value()
            sc.expect(":")
        else:
            key = i
        sub = (*path, key)
        if depth == 1:
            yield sub, sc.value()
        elif sc.peek() in "{[" and (want is None or want(sub)):
            yield from _walk(sc, depth - 1, sub, want)
        elif sc.peek() in "{[":
            sc.value()  # a pruned container: decoded and dropped
        else:
            yield sub, sc.value()
        i += 1
        if sc.expect("," + closing) == closing:
            return


__all__ = ["iter_values"]
