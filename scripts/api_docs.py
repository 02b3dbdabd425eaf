"""Rewrites the operations table in docs/api.md from the generated OpenAPI document
(functions/openapi.py); tests/unit/test_openapi.py fails while the two differ."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from functions.openapi import document
from scripts.doc_section import replace_section

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
START, END = "<!-- operations:start -->", "<!-- operations:end -->"


def table() -> str:
    rows = [
        "| operation | who | answers | summary |",
        "| --- | --- | --- | --- |",
    ]
    for path, ops in document("docs")["paths"].items():
        for method, op in ops.items():
            who = op["x-caller"]
            answers = ", ".join(op["responses"])
            summary = op["summary"].replace("|", "\\|")
            rows.append(f"| `{method.upper()} {path}` | {who} | {answers} | {summary} |")
    return "\n".join(rows)


def main() -> None:
    replace_section(DOC, START, END, table())


if __name__ == "__main__":
    main()
