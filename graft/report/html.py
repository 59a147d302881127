"""HTML building blocks for the report: every piece of text is escaped, every image is a ``data:``
URI, and the page needs nothing from the network (no scripts, fonts or style sheets from elsewhere).

Example:
    >>> table(["class", "n"], [["<cat>", 3]])
    '<table><thead><tr><th>class</th><th>n</th></tr></thead><tbody><tr><td>&lt;cat&gt;</td><td class="num">3</td></tr></tbody></table>'
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1em 2em;color:#222}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{background:#fff8e1;border-left:4px solid #f0b400;padding:.4em .8em;margin:.5em 0}
.grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;text-align:center;font-size:12px}
figure img{display:block;image-rendering:pixelated;border:1px solid #ccc}
pre{background:#f7f7f7;padding:1em;overflow:auto;font-size:12px}img.plot{max-width:100%}
nav a{margin-right:1em}
"""


@dataclass
class Section:
    """One ``<section id=...>`` of the report: escaped ``body`` HTML and plain-text ``notes``."""

    id: str
    title: str
    body: str = ""
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        notes = "".join(note(n) for n in self.notes)
        return (f'<section id="{esc(self.id)}"><h2>{esc(self.title)}</h2>'
                f"{notes}{self.body}</section>")  # fmt: skip


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape(str(value), quote=True)


def note(text: str) -> str:
    """A highlighted remark (a missing piece, an approximation)."""
    return f'<p class="note">{esc(text)}</p>'


def img(uri: str, alt: str, cls: str, **data: Any) -> str:
    """An ``<img>`` with a ``data:`` URI and ``data-*`` attributes (escaped)."""
    if not uri.startswith("data:image/"):
        raise ValueError("report images must be embedded data: URIs")
    attrs = "".join(f' data-{esc(k.replace("_", "-"))}="{esc(v)}"' for k, v in data.items())
    return f'<img class="{esc(cls)}" alt="{esc(alt)}" src="{uri}"{attrs}>'


def figure(image_html: str, caption_lines: Iterable[str]) -> str:
    """An image with an escaped, line-broken caption."""
    caption = "<br>".join(esc(line) for line in caption_lines)
    return f"<figure>{image_html}<figcaption>{caption}</figcaption></figure>"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], numeric: bool = True) -> str:
    """A table; numbers get right-aligned ``num`` cells when ``numeric``."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v, numeric) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any, numeric: bool) -> str:
    if numeric and isinstance(value, (int, float)) and not isinstance(value, bool):
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        return f'<td class="num">{esc(text)}</td>'
    return f"<td>{esc(value)}</td>"


def page(title: str, sections: Sequence[Section], data: dict[str, Any]) -> str:
    """The whole document; ``data`` (what was plotted, counts) is embedded as inert JSON."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    payload = json.dumps(data, default=str).replace("<", "\\u003c")  # no '</script>' inside
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{esc(title)}</h1><nav>{nav}</nav>"
        + "".join(s.render() for s in sections)
        + f'<script type="application/json" id="report-data">{payload}</script>'
        + "</body></html>\n"
    )
