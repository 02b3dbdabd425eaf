"""Rewrites the settings table in docs/configuration.md from shared/config.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.doc_section import replace_section
from shared.config import SETTINGS

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def table() -> str:
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for s in SETTINGS.values():
        default = (
            "*(required)*"
            if s.default is None
            else (f"`{s.default}`" if s.default else "*(empty)*")
        )
        secret = " **Secret**: use a Key Vault reference." if s.secret else ""
        rows.append(f"| `{s.env}` | {default} | {s.doc}{secret} |")
    return "\n".join(rows)


def main() -> None:
    replace_section(DOC, START, END, table())


if __name__ == "__main__":
    main()
