"""Parse a report page with the standard library: sections, images, notes, embedded data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class Page:
    sections: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)  # attrs + "section"
    notes: dict[str, list[str]] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    links: list[str] = field(default_factory=list)

    def images_in(self, section: str, cls: str) -> list[dict[str, str]]:
        return [
            i for i in self.images if i["section"] == section and cls in i.get("class", "").split()
        ]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self.section = ""
        self.in_note = self.in_data = False
        self.buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id", "")
            self.page.sections.append(self.section)
            self.page.notes[self.section] = []
            self.page.text[self.section] = ""
        elif tag == "img":
            self.page.images.append({**a, "section": self.section})
        elif tag == "p" and a.get("class") == "note":
            self.in_note, self.buffer = True, []
        elif tag == "script" and a.get("id") == "report-data":
            self.in_data, self.buffer = True, []
        for key in ("href", "src"):
            if key in a:
                self.page.links.append(a[key])

    def handle_endtag(self, tag):
        if tag == "p" and self.in_note:
            self.page.notes[self.section].append("".join(self.buffer))
            self.in_note = False
        elif tag == "script" and self.in_data:
            self.page.data = json.loads("".join(self.buffer))
            self.in_data = False
        elif tag == "section":
            self.section = ""

    def handle_data(self, data):
        if self.in_note or self.in_data:
            self.buffer.append(data)
        if self.section:
            self.page.text[self.section] += data


def parse_report(path: Path) -> Page:
    parser = _Parser()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return parser.page
