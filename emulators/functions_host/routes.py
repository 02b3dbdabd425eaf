"""ASP.NET Core route templates as the Functions host reads them: `{id:int}`, `{a?}`, `{*rest}`."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


class RouteError(ValueError):
    """The template is not a valid route template."""


def _is_int(v: str, bits: int) -> bool:
    try:
        n = int(v)
    except ValueError:
        return False
    return re.fullmatch(r"[+-]?\d+", v) is not None and -(2 ** (bits - 1)) <= n < 2 ** (bits - 1)


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity")


def _is_guid(v: str) -> bool:
    try:
        uuid.UUID(v)
    except ValueError:
        return False
    return True


def _is_datetime(v: str) -> bool:
    try:
        datetime.fromisoformat(v)
    except ValueError:
        return False
    return True


def _int_args(name: str, args: list[str], count: tuple[int, ...]) -> list[int]:
    if len(args) not in count or not all(re.fullmatch(r"-?\d+", a) for a in args):
        raise RouteError(f"constraint '{name}' needs {' or '.join(map(str, count))} integer(s)")
    return [int(a) for a in args]


def _constraint(spec: str) -> Callable[[str], bool]:
    """Build the check for one inline constraint such as `int`, `range(1,5)` or `regex(^a$)`."""
    match = re.fullmatch(r"(\w+)(?:\((.*)\))?", spec, re.S)
    if not match:
        raise RouteError(f"invalid constraint '{spec}'")
    name, raw = match.group(1).lower(), match.group(2)
    if name == "regex":
        pattern = re.compile(raw or "", re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    args = [a.strip() for a in raw.split(",")] if raw else []
    simple: dict[str, Callable[[str], bool]] = {
        "int": lambda v: _is_int(v, 32),
        "long": lambda v: _is_int(v, 64),
        "bool": lambda v: v.lower() in ("true", "false"),
        "datetime": _is_datetime,
        "decimal": _is_float,
        "double": _is_float,
        "float": _is_float,
        "guid": _is_guid,
        "alpha": lambda v: re.fullmatch(r"[a-zA-Z]*", v) is not None,
    }
    if name in simple:
        if args:
            raise RouteError(f"constraint '{name}' takes no arguments")
        return simple[name]
    if name in ("min", "max"):
        (limit,) = _int_args(name, args, (1,))
        if name == "min":
            return lambda v: _is_int(v, 64) and int(v) >= limit
        return lambda v: _is_int(v, 64) and int(v) <= limit
    if name == "range":
        low, high = _int_args(name, args, (2,))
        return lambda v: _is_int(v, 64) and low <= int(v) <= high
    if name == "length":
        bounds = _int_args(name, args, (1, 2))
        low, high = (bounds[0], bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return lambda v: low <= len(v) <= high
    if name in ("minlength", "maxlength"):
        (limit,) = _int_args(name, args, (1,))
        if name == "minlength":
            return lambda v: len(v) >= limit
        return lambda v: len(v) <= limit
    raise RouteError(f"unknown constraint '{name}'")


@dataclass(frozen=True)
class _Param:
    name: str
    optional: bool
    catch_all: bool
    default: str | None
    checks: tuple[Callable[[str], bool], ...]


def _scan_segment(segment: str, template: str) -> list[str]:
    """Split a segment into literal, parameter, literal, ... (`{{` and `}}` escape braces)."""
    pieces = [""]
    in_param = False
    i = 0
    while i < len(segment):
        ch = segment[i]
        pair = segment[i : i + 2]
        if pair in ("{{", "}}"):
            pieces[-1] += ch
            i += 2
            continue
        if ch == "{" and not in_param:
            pieces.append("")
            in_param = True
        elif ch == "}" and in_param:
            pieces.append("")
            in_param = False
        elif ch in "{}":
            raise RouteError(f"route '{template}': unbalanced braces in '{segment}'")
        else:
            pieces[-1] += ch
        i += 1
    if in_param:
        raise RouteError(f"route '{template}': unbalanced braces in '{segment}'")
    return pieces


def _split_params(body: str, template: str) -> tuple[str, list[str], str | None, bool, bool]:
    """Split `*name:c1:c2(x)=default?` into its parts."""
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    if optional:
        body = body[:-1]
    default: str | None = None
    # The default follows the last constraint; a `=` inside parentheses belongs to a regex.
    depth, cut = 0, -1
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "=" and depth == 0:
            cut = i
            break
    if cut >= 0:
        body, default = body[:cut], body[cut + 1 :]
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(body):
        depth += ch == "("
        depth -= ch == ")"
        if ch == ":" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    name = parts[0]
    if not re.fullmatch(r"\w+", name):
        raise RouteError(f"invalid parameter name '{name}' in route '{template}'")
    return name, parts[1:], default, optional, catch_all


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled template. `match(path)` gives the route values or None."""

    template: str
    regex: re.Pattern[str]
    params: tuple[_Param, ...]
    precedence: tuple[int, ...]

    @classmethod
    def compile(cls, template: str) -> RouteTemplate:
        text = template.strip("/")
        if text.startswith("~"):
            raise RouteError(f"route '{template}': '~' templates are not supported")
        segments = text.split("/") if text else []
        pattern = ""
        params: list[_Param] = []
        precedence: list[int] = []
        for index, segment in enumerate(segments):
            if not segment:
                raise RouteError(f"route '{template}' has an empty segment")
            pieces = _scan_segment(segment, template)  # literal, param, literal, param, ...
            literal_parts, param_parts = pieces[0::2], pieces[1::2]
            seg_params = [_split_params(body, template) for body in param_parts]
            last = index == len(segments) - 1
            whole = len(pieces) == 3 and not pieces[0] and not pieces[2]
            for name, cons, default, optional, catch_all in seg_params:
                if catch_all and not (last and whole):
                    raise RouteError(f"route '{template}': a catch-all must be the last segment")
                if optional and not whole:
                    raise RouteError(f"route '{template}': '{name}?' must be a whole segment")
                if name in {p.name for p in params}:
                    raise RouteError(f"route '{template}' repeats parameter '{name}'")
                params.append(
                    _Param(
                        name,
                        optional or default is not None or catch_all,
                        catch_all,
                        default,
                        tuple(_constraint(c) for c in cons),
                    )
                )
            if not seg_params:
                pattern += "/" + re.escape(literal_parts[0])
                precedence.append(1)
                continue
            if whole:
                p = params[-1]
                group = (
                    f"(?P<p{len(params) - 1}>.*)"
                    if p.catch_all
                    else f"(?P<p{len(params) - 1}>[^/]+)"
                )
                pattern += f"(?:/{group})?" if p.optional else f"/{group}"
                precedence.append((5 if p.checks else 6) if p.catch_all else (3 if p.checks else 4))
                continue
            # A complex segment such as `{file}.{ext}`: literals between lazily matched values.
            piece = ""
            first_param = len(params) - len(seg_params)
            for i, lit in enumerate(literal_parts):
                piece += re.escape(lit)
                if i < len(param_parts):
                    piece += f"(?P<p{first_param + i}>[^/]+?)"
            pattern += "/" + piece
            precedence.append(2)
        regex = re.compile(f"^{pattern}/?$", re.IGNORECASE)
        return cls(template, regex, tuple(params), tuple(precedence))

    def match(self, path: str) -> dict[str, str] | None:
        """Match a path relative to the route prefix, with a leading `/` (or empty)."""
        m = self.regex.match(path)
        if not m:
            return None
        values: dict[str, str] = {}
        for i, param in enumerate(self.params):
            value = m.group(f"p{i}")
            if value is None or (param.catch_all and value == ""):
                if param.default is not None:
                    values[param.name] = param.default
                continue
            if not all(check(value) for check in param.checks):
                return None
            values[param.name] = value
        return values


def join_prefix(prefix: str, template: str) -> str:
    """The public path of a route: `/api/items/{id}` (or `/items/{id}` with an empty prefix)."""
    parts = [p for p in (prefix.strip("/"), template.strip("/")) if p]
    return "/" + "/".join(parts)
