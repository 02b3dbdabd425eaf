"""OData query options as Dataverse reads them: $filter (typed), $select, $orderby, $expand."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators.dataverse.errors import ODataError, property_not_found, query_error
from emulators.dataverse.schema import BOOL, DATETIME, DECIMAL, GUID, INT, STRING, Table

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^']|'')*')
  | (?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b)
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?(?:[mMdDfFlL])?)
  | (?P<name>[A-Za-z_$][\w.$/]*)
  | (?P<punct>[(),\[\]=])
    """,
    re.VERBOSE,
)

_COMPARISONS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_STRING_FUNCTIONS = {"contains", "startswith", "endswith"}
_NUMERIC = {INT, DECIMAL}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match and text[pos] == "'":  # OData's lexer reads to the end for the quote
            raise query_error(
                f"There is an unterminated literal at position {len(text)} in '{text}'."
            )
        if not match:
            raise query_error(f"Syntax error at position {pos} in '{text}'.")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


# AST nodes are tuples: ("or"|"and", a, b), ("not", a), ("cmp", op, left, right),
# ("func", name, prop, literal), ("in", prop, [values]); operands ("prop", name, edm) or
# ("lit", edm | None, value).
Node = tuple[Any, ...]


class FilterParser:
    def __init__(self, text: str, table: Table, edm_of: Callable[[str], str | None]) -> None:
        self.text = text
        self.table = table
        self.edm_of = edm_of
        self.tokens = tokenize(text)
        self.i = 0

    def parse(self) -> Node:
        if not self.tokens:
            raise query_error("The $filter query option is empty.")
        node = self._or()
        if self.i < len(self.tokens):
            tok = self.tokens[self.i]
            raise query_error(f"Syntax error at position {tok.pos} in '{self.text}'.")
        return node

    def _peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _next(self) -> Token:
        tok = self._peek()
        if tok is None:
            raise query_error(f"Syntax error at position {len(self.text)} in '{self.text}'.")
        self.i += 1
        return tok

    def _expect(self, text: str) -> None:
        tok = self._next()
        if tok.text != text:
            raise query_error(f"Syntax error at position {tok.pos} in '{self.text}'.")

    def _keyword(self, word: str) -> bool:
        tok = self._peek()
        if tok is not None and tok.kind == "name" and tok.text == word:
            self.i += 1
            return True
        return False

    def _or(self) -> Node:
        node = self._and()
        while self._keyword("or"):
            node = ("or", node, self._and())
        return node

    def _and(self) -> Node:
        node = self._unary()
        while self._keyword("and"):
            node = ("and", node, self._unary())
        return node

    def _unary(self) -> Node:
        if self._keyword("not"):
            return ("not", self._unary())
        return self._primary()

    def _primary(self) -> Node:
        tok = self._peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            node = self._or()
            self._expect(")")
            return node
        if tok is not None and tok.kind == "name":
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if nxt is not None and nxt.text == "(":
                return self._function()
        left = self._operand()
        op_tok = self._next()
        if op_tok.kind != "name" or op_tok.text not in _COMPARISONS:
            raise query_error(f"Syntax error at position {op_tok.pos} in '{self.text}'.")
        right = self._operand()
        self._check_types(op_tok.text, left, right)
        return ("cmp", op_tok.text, left, right)

    def _operand(self) -> Node:
        tok = self._next()
        if tok.kind == "string":
            return ("lit", STRING, tok.text[1:-1].replace("''", "'"))
        if tok.kind == "guid":
            return ("lit", GUID, tok.text.lower())
        if tok.kind == "datetime":
            return ("lit", DATETIME, parse_datetime(tok.text))
        if tok.kind == "number":
            raw = tok.text.rstrip("mMdDfFlL")
            if "." in raw:
                return ("lit", DECIMAL, float(raw))
            return ("lit", INT, int(raw))
        if tok.kind == "name":
            if tok.text == "null":
                return ("lit", None, None)
            if tok.text in ("true", "false"):
                return ("lit", BOOL, tok.text == "true")
            return self._property(tok.text)
        raise query_error(f"Syntax error at position {tok.pos} in '{self.text}'.")

    def _property(self, name: str) -> Node:
        if "/" in name:
            raise query_error(
                f"Navigation property paths ('{name}') are not supported by the emulator."
            )
        edm = self.edm_of(name)
        if edm is None:
            raise property_not_found(name, self.table)
        return ("prop", name, edm)

    def _function(self) -> Node:
        name_tok = self._next()
        self._expect("(")
        name = name_tok.text
        if name in _STRING_FUNCTIONS:
            prop = self._operand()
            self._expect(",")
            literal = self._operand()
            self._expect(")")
            for operand in (prop, literal):
                if operand[0] == "lit" and operand[1] not in (STRING, None):
                    raise query_error(
                        f"No function signature for the function with name '{name}' matches "
                        "the specified arguments."
                    )
                if operand[0] == "prop" and operand[2] != STRING:
                    raise query_error(
                        f"No function signature for the function with name '{name}' matches "
                        "the specified arguments."
                    )
            return ("func", name, prop, literal)
        if name == "Microsoft.Dynamics.CRM.In":
            args: dict[str, Any] = {}
            while True:
                key = self._next()
                self._expect("=")
                if key.text == "PropertyValues":
                    self._expect("[")
                    values: list[str] = []
                    while True:
                        value = self._next()
                        if value.kind != "string":
                            raise query_error(f"Syntax error at position {value.pos}.")
                        values.append(value.text[1:-1].replace("''", "'"))
                        sep = self._next()
                        if sep.text == "]":
                            break
                        if sep.text != ",":
                            raise query_error(f"Syntax error at position {sep.pos}.")
                    args["PropertyValues"] = values
                else:
                    value = self._next()
                    args[key.text] = value.text[1:-1] if value.kind == "string" else value.text
                sep = self._next()
                if sep.text == ")":
                    break
                if sep.text != ",":
                    raise query_error(f"Syntax error at position {sep.pos}.")
            prop_name = args.get("PropertyName")
            if not isinstance(prop_name, str) or "PropertyValues" not in args:
                raise query_error(
                    "Microsoft.Dynamics.CRM.In needs PropertyName and PropertyValues."
                )
            prop = self._property(prop_name)
            converted = [convert_literal(v, prop[2]) for v in args["PropertyValues"]]
            return ("in", prop, converted)
        raise query_error(f"An unknown function with name '{name}' was found.")

    def _check_types(self, op: str, left: Node, right: Node) -> None:
        edms = [n[1] if n[0] == "lit" else n[2] for n in (left, right)]
        if None in edms:
            return
        a, b = edms
        ok = a == b or (a in _NUMERIC and b in _NUMERIC)
        if ok and a == BOOL and op not in ("eq", "ne"):
            ok = False
        if not ok:
            raise query_error(
                "A binary operator with incompatible types was detected. Found operand types "
                f"'{a}' and '{b}' for operator kind '{_COMPARISONS[op]}'."
            )


def parse_datetime(text: str) -> dt.datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise query_error(f"The DateTimeOffset text '{text}' is not valid.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def convert_literal(text: str, edm: str) -> Any:
    """A string value (as Microsoft.Dynamics.CRM.In takes them) converted to the column's type."""
    try:
        if edm == GUID:
            return str(uuid.UUID(text))
        if edm == INT:
            return int(text)
        if edm == DECIMAL:
            return float(text)
        if edm == BOOL:
            return text.lower() == "true"
        if edm == DATETIME:
            return parse_datetime(text)
    except ValueError:
        raise query_error(f"Cannot convert the literal '{text}' to the type '{edm}'.") from None
    return text


def _norm(value: Any, edm: str | None) -> Any:
    """Comparable form: strings compare case-insensitively (Dataverse's SQL collation)."""
    if value is None:
        return None
    if edm == STRING and isinstance(value, str):
        return value.casefold()
    if edm == GUID and isinstance(value, str):
        return value.lower()
    if edm == DATETIME and isinstance(value, str):
        return parse_datetime(value)
    return value


def evaluate(node: Node, record: dict[str, Any]) -> bool:
    kind = node[0]
    if kind == "or":
        return evaluate(node[1], record) or evaluate(node[2], record)
    if kind == "and":
        return evaluate(node[1], record) and evaluate(node[2], record)
    if kind == "not":
        return not evaluate(node[1], record)
    if kind == "cmp":
        _, op, left, right = node
        edm = left[2] if left[0] == "prop" else (right[2] if right[0] == "prop" else left[1])
        a = _norm(_operand_value(left, record), edm)
        b = _norm(_operand_value(right, record), edm)
        if op == "eq":
            return bool(a == b)
        if op == "ne":
            return bool(a != b)
        if a is None or b is None:
            return False
        return bool(
            {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]  # type: ignore[operator]
        )
    if kind == "func":
        _, name, prop, literal = node
        value = _norm(_operand_value(prop, record), STRING)
        needle = _norm(_operand_value(literal, record), STRING)
        if value is None or needle is None:
            return False
        pattern = like_pattern(needle)
        if name == "contains":
            return pattern.search(value) is not None
        if name == "startswith":
            return pattern.match(value) is not None
        return re.search(f"(?:{pattern.pattern})$", value, re.DOTALL) is not None
    if kind == "in":
        _, prop, values = node
        edm = prop[2]
        value = _norm(record.get(prop[1]), edm)
        return value in {_norm(v, edm) for v in values}
    raise ODataError(500, "0x80040216", f"Unknown filter node {kind}")


def like_pattern(needle: str) -> re.Pattern[str]:
    """The string functions' value as Dataverse reads it: a T-SQL LIKE pattern, `%` any text,
    `_` one character, `[abc]`/`[a-c]` one of a set, `[^...]` one not in it, `[%]` a literal."""
    out, i = [], 0
    while i < len(needle):
        ch = needle[i]
        close = needle.find("]", i + 2) if ch == "[" else -1
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif close != -1:
            body = needle[i + 1 : close]
            negate = body.startswith("^") and len(body) > 1
            members = body[1:] if negate else body
            parts = []
            j = 0
            while j < len(members):
                if j + 2 < len(members) and members[j + 1] == "-":
                    parts.append(f"{re.escape(members[j])}-{re.escape(members[j + 2])}")
                    j += 3
                else:
                    parts.append(re.escape(members[j]))
                    j += 1
            out.append(f"[{'^' if negate else ''}{''.join(parts)}]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.DOTALL)
    except re.error:  # a reversed range ([z-a]) matches nothing in SQL Server
        return re.compile(r"(?!)")


def _operand_value(node: Node, record: dict[str, Any]) -> Any:
    return record.get(node[1]) if node[0] == "prop" else node[2]


def parse_orderby(
    text: str, table: Table, edm_of: Callable[[str], str | None]
) -> list[tuple[str, bool]]:
    order: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise query_error(f"Syntax error in $orderby '{text}'.")
        if edm_of(words[0]) is None:
            raise property_not_found(words[0], table)
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    return order


def sort_records(
    records: list[dict[str, Any]],
    order: list[tuple[str, bool]],
    edm_of: Callable[[str], str | None],
) -> list[dict[str, Any]]:
    out = list(records)
    for name, desc in reversed(order):
        edm = edm_of(name)

        def key(r: dict[str, Any], name: str = name, edm: str | None = edm) -> tuple[bool, Any]:
            value = _norm(r.get(name), edm)
            return (value is not None, value if value is not None else 0)

        out.sort(key=key, reverse=desc)  # SQL Server: NULLs first ascending, last descending
    return out


def parse_select(text: str, table: Table, readable: Callable[[str], bool]) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if not readable(name):
            raise property_not_found(name, table)
    return names


@dataclass
class ExpandItem:
    nav: str
    options: dict[str, str] = field(default_factory=dict)


def split_top_level(text: str, sep: str) -> list[str]:
    parts, depth, quote, current = [], 0, False, []
    for ch in text:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_expand(text: str) -> list[ExpandItem]:
    items: list[ExpandItem] = []
    for part in split_top_level(text, ","):
        match = re.fullmatch(r"([\w.]+)(?:\((.*)\))?", part, re.DOTALL)
        if not match:
            raise query_error(f"Syntax error in $expand '{text}'.")
        options: dict[str, str] = {}
        for option in split_top_level(match.group(2) or "", ";"):
            key, _, value = option.partition("=")
            if key not in ("$select", "$filter", "$orderby", "$top"):
                raise query_error(f"The query option '{key}' is not supported inside $expand.")
            options[key] = value
        items.append(ExpandItem(match.group(1), options))
    return items
