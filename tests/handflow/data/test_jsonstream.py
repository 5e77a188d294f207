"""The streaming JSON reader: same values and the same one-line errors as reading the file whole."""

from __future__ import annotations

import json

import pytest

import handflow.data.jsonstream as js
from handflow.errors import HandflowError
from handflow.io import read_json


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(js, "_CHUNK", 5)  # every value crosses chunk boundaries


def test_values_at_depth_match_json_load(tmp_path, small_chunks):
    doc = {"info": {"skip": [1, 2]}, "images": [{"id": i, "x": [1.5e3, -2, 3.25], "s": "é\u00e9\"q"} for i in range(30)],
           "annotations": [], "n": 12345678901234, "frames": {"7": {"a": 1}, "8": {"a": 2}}}
    p = tmp_path / "a.json"
    p.write_text(json.dumps(doc, indent=1))
    out = list(js.iter_values(p, 2, want=lambda k: k[0] != "info"))
    assert [v for k, v in out if k[0] == "images"] == doc["images"]
    assert [k for k, _ in out if k[0] == "images"] == [("images", i) for i in range(30)]
    assert (("n",), 12345678901234) in out  # a number split across chunks is read whole
    assert [(k, v) for k, v in out if k[0] == "frames"] == [(("frames", "7"), {"a": 1}), (("frames", "8"), {"a": 2})]
    assert not any(k[0] == "info" for k, _ in out)


@pytest.mark.parametrize("text, message", [
    ('{"a": [1, 2,]}', "corrupt JSON in "),
    ('{"a": [1] ', "corrupt JSON in "),
    ('{"a": [1]} x', "corrupt JSON in "),
    ('{"a": [NaN]}', "non-finite number NaN"),
    ("", "empty JSON file: "),
    ("  \n", "empty JSON file: "),
    ("[1, 2]", "expected a JSON dict, found list"),
    ('"x"', "expected a JSON dict, found str"),
])
def test_errors_match_read_json(tmp_path, small_chunks, text, message):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(HandflowError, match=message) as streamed:
        list(js.iter_values(p, 2))
    with pytest.raises(HandflowError) as whole:
        read_json(p)
    assert str(p) in str(streamed.value)
    if "line" in str(whole.value):  # the same position as json.loads reports
        assert str(whole.value).rsplit(": line", 1)[1] == str(streamed.value).rsplit(": line", 1)[1]
    else:
        assert str(whole.value) == str(streamed.value)


def test_missing_file(tmp_path):
    with pytest.raises(HandflowError, match="missing file: "):
        list(js.iter_values(tmp_path / "none.json", 1))
