"""A small reader of Bicep text for the infra tests: resources, params, vars and object entries.

No Bicep compiler (or offline validator) can be installed on these machines, so the tests read
the declarations themselves. It understands the subset infra/ uses: single-quoted strings with
`${...}` interpolation, `//` comments, objects and arrays over lines or with commas.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_RESOURCE = re.compile(
    r"^(?:resource|module) (\w+) '([^']+)'(?: existing)? = (?:if \((.*?)\) )?\{", re.M
)
_PARAM = re.compile(r"^param (\w+) (\w+)(?: = (.+))?$", re.M)
_VAR = re.compile(r"^var (\w+) = ", re.M)
_OPEN, _CLOSE = "({[", ")}]"


def strip_comments(text: str) -> str:
    """Drop `//` comments (outside strings) and keep everything else as it is."""
    out, i, in_string = [], 0, False
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                out.append(text[i : i + 2])
                i += 2
                continue
            in_string = ch != "'"
        elif ch == "'":
            in_string = True
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _scan(text: str, start: int) -> int:
    """The index just after the bracketed expression opening at `start`."""
    depth, in_string, i = 0, False, start
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                i += 1
            elif ch == "'":
                in_string = False
        elif ch == "'":
            in_string = True
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError("unbalanced brackets")


def _split_top(text: str) -> list[str]:
    """Split an object's or array's inside on newlines and commas at depth 0."""
    parts, depth, in_string, current = [], 0, False, []
    i = 0
    while i < len(text):
        ch = text[i]
        if in_string:
            if ch == "\\":
                current.append(text[i : i + 2])
                i += 2
                continue
            if ch == "'":
                in_string = False
        elif ch == "'":
            in_string = True
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and ch in "\n,":
            parts.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _key_value(entry: str) -> tuple[str, str] | None:
    match = re.match(r"^('([^']*)'|[A-Za-z_]\w*)\s*:\s*(.*)$", entry, re.S)
    if match is None:
        return None
    return match.group(2) if match.group(2) is not None else match.group(1), match.group(3).strip()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None


@dataclass(frozen=True)
class Block:
    """One `resource` or `module` declaration: its symbol, type string and `{...}` body."""

    symbol: str
    type: str
    condition: str | None
    code: str

    def properties(self) -> dict[str, str]:
        return BicepFile.parse_object(self.code)

    def object(self, key: str) -> dict[str, str]:
        return BicepFile.parse_object(self.properties()[key])


@dataclass(frozen=True)
class BicepFile:
    path: Path
    code: str  # without comments
    resources: dict[str, Block]
    params: dict[str, Param]
    variables: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> BicepFile:
        code = strip_comments(path.read_text())
        resources = {}
        for match in _RESOURCE.finditer(code):
            brace = match.end() - 1
            body = code[brace : _scan(code, brace)]
            resources[match.group(1)] = Block(match.group(1), match.group(2), match.group(3), body)
        params = {
            m.group(1): Param(m.group(1), m.group(2), m.group(3)) for m in _PARAM.finditer(code)
        }
        variables = {}
        for match in _VAR.finditer(code):
            start = match.end()
            end = start
            while end < len(code) and code[end] != "\n":
                if code[end] in _OPEN:
                    end = _scan(code, end)
                    continue
                if code[end] == "'":
                    end = code.index("'", end + 1) + 1
                    continue
                end += 1
            variables[match.group(1)] = code[start:end].strip()
        return cls(path, code, resources, params, variables)

    def resource(self, symbol: str) -> Block:
        if symbol not in self.resources:
            raise AssertionError(f"{self.path.name} declares no resource {symbol!r}")
        return self.resources[symbol]

    @staticmethod
    def parse_object(text: str) -> dict[str, str]:
        """`{ a: 1, 'b-c': { ... } }` -> {'a': '1', 'b-c': '{ ... }'} (values as Bicep text)."""
        text = text.strip()
        if not (text.startswith("{") and text.endswith("}")):
            raise AssertionError(f"not an object: {text[:60]!r}")
        entries = {}
        for part in _split_top(text[1:-1]):
            pair = _key_value(part)
            if pair is not None:
                entries[pair[0]] = pair[1]
        return entries
