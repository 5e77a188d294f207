"""The report's document model and its two writers: one self-contained HTML file, or a Markdown folder.

HTML: every figure is a base64 PNG data URI, the style sheet is inline, there are no scripts, fonts
or links, and every interpolated value goes through :func:`html.escape`. The file is written
atomically. The Markdown writer writes a folder (``report.md`` + ``figures/*.png``) into a
temporary folder beside the target and renames it into place.

Nothing here knows what the report is about: :mod:`viewselect.outputs.report` builds the content.
"""

from __future__ import annotations

import base64
import html
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from handflow.errors import HandflowError


@dataclass
class Figure:
    key: str  # file stem in the Markdown folder: [a-z0-9-]
    caption: str
    png: bytes


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list]
    note: str = ""


@dataclass
class Section:
    title: str
    text: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class ReportContent:
    title: str
    intro: str
    sections: list[Section]


# ---------------------------------------------------------------- HTML

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:1180px;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}h3{font-size:1em;margin-bottom:.3em}
figure{display:inline-table;vertical-align:top;margin:1em 1.5em 1em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{display:table-caption;caption-side:bottom;font-size:.85em;color:#555;padding-top:.3em}
table{border-collapse:collapse;font-size:.82em;margin:.4em 0 1em}
th,td{border:1px solid #ddd;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.kv td,.kv th{text-align:left;font-family:monospace;word-break:break-all}.kv td:first-child{white-space:nowrap}
.note{font-size:.82em;color:#555}.scroll{max-height:32em;overflow:auto;display:inline-block}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _html_table(t: Table, kv: bool = False) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in t.columns)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in t.rows)
    cls = ' class="kv"' if kv else ""
    wrap = len(t.rows) > 30 and not kv
    table = f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if wrap:
        table = f'<div class="scroll">{table}</div>'
    note = f'<p class="note">{_e(t.note)}</p>' if t.note else ""
    return f"<h3>{_e(t.title)}</h3>{table}{note}"


def _html_figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{_e(f.caption)}">'
            f"<figcaption>{_e(f.caption)}</figcaption></figure>")


def render_html(content: ReportContent) -> str:
    """One self-contained page: inline CSS, data-URI images, no scripts; every value escaped."""
    parts = [f"<h1>{_e(content.title)}</h1>", f"<p>{_e(content.intro)}</p>"]
    for s in content.sections:
        parts.append(f"<h2>{_e(s.title)}</h2>")
        if s.text:
            parts.append(f"<p>{_e(s.text)}</p>")
        parts += [_html_figure(f) for f in s.figures]
        parts += [_html_table(t, kv=s.title == "Provenance") for t in s.tables]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(content.title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


# ---------------------------------------------------------------- Markdown folder


def _md(x) -> str:
    """A Markdown table cell / paragraph: HTML-escaped, pipes and backslashes escaped, one line."""
    s = html.escape(str(x), quote=False).replace("\\", "\\\\").replace("|", "\\|")
    for ch in "`*_[]":
        s = s.replace(ch, "\\" + ch)
    return " ".join(s.split())


def render_markdown(content: ReportContent, image_dir: str = "figures") -> tuple[str, dict[str, bytes]]:
    """Markdown text and ``{relative PNG path: bytes}``."""
    lines = [f"# {_md(content.title)}", "", _md(content.intro), ""]
    files: dict[str, bytes] = {}
    for s in content.sections:
        lines += [f"## {_md(s.title)}", ""]
        if s.text:
            lines += [_md(s.text), ""]
        for f in s.figures:
            name = f"{image_dir}/{f.key}.png"
            files[name] = f.png
            lines += [f"![{_md(f.caption)}]({name})", "", f"*{_md(f.caption)}*", ""]
        for t in s.tables:
            lines += [f"**{_md(t.title)}**", "", "| " + " | ".join(_md(c) for c in t.columns) + " |",
                      "|" + "|".join(" --- " for _ in t.columns) + "|"]
            lines += ["| " + " | ".join(_md(v) for v in row) + " |" for row in t.rows]
            lines += ["", _md(t.note), ""] if t.note else [""]
    return "\n".join(lines) + "\n", files


def write_markdown_folder(out: str | os.PathLike, content: ReportContent) -> Path:
    """Write ``out/report.md`` and ``out/figures/*.png`` as a whole: a temporary folder renamed into place.

    An existing ``out`` is replaced only when it is an earlier report (holds ``report.md``) or empty.
    """
    out = Path(out)
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / "report.md").is_file()):
            raise HandflowError(f"--out {out} exists and is not an earlier Markdown report; choose another folder")
    text, files = render_markdown(content)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as err:
        raise HandflowError(f"cannot write {out}: {err.strerror or err}") from err
    old = None
    try:
        (tmp / "report.md").write_text(text, encoding="utf-8")
        for rel, data in files.items():
            p = tmp / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if out.exists():
            old = out.with_name(f".{out.name}.old.{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)
        raise HandflowError(f"cannot write {out}: {err.strerror or err}") from err
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
