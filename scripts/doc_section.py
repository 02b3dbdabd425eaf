"""Rewrites the part of a generated doc between its two marker comments (the tables that
scripts/config_docs.py and scripts/api_docs.py generate)."""

from __future__ import annotations

from pathlib import Path


def replace_section(doc: Path, start: str, end: str, content: str) -> None:
    """Put `content` between the `start` and `end` markers of `doc`, keeping the rest."""
    text = doc.read_text()
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    doc.write_text(f"{before}{start}\n{content}\n{end}{after}")
