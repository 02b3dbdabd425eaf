"""OData $batch wire format: multipart/mixed requests in, multipart/mixed responses out."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from emulators.dataverse.errors import ODataError, query_error


@dataclass
class Part:
    headers: dict[str, str]
    content: bytes


@dataclass
class InnerRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class InnerResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not match:
        raise query_error("The $batch request has no multipart boundary.")
    return match.group(1)


def _headers(block: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in block.decode("utf-8").split("\n"):
        if ":" in line:
            name, _, value = line.partition(":")
            out[name.strip().lower()] = value.strip()
    return out


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    # Clients send CRLF; JSON bodies cannot hold a raw line break, so normalising is safe.
    text = body.replace(b"\r\n", b"\n")
    delimiter = b"--" + boundary.encode()
    chunks = text.split(delimiter)
    parts: list[Part] = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        chunk = chunk.lstrip(b"\n")
        head, sep, content = chunk.partition(b"\n\n")
        if not sep:
            head, content = chunk, b""
        parts.append(Part(_headers(head), content.rstrip(b"\n")))
    if not parts:
        raise query_error("The $batch request contains no parts.")
    return parts


def parse_inner_request(part: Part) -> InnerRequest:
    if "application/http" not in part.headers.get("content-type", ""):
        raise ODataError(400, "0x80060888", "A batch part must have Content-Type application/http.")
    head, sep, body = part.content.partition(b"\n\n")
    lines = head.decode("utf-8").split("\n")
    request_line = lines[0].split()
    if len(request_line) < 2:
        raise query_error(f"The batch request line '{lines[0]}' is not valid.")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return InnerRequest(
        method=request_line[0].upper(),
        url=request_line[1],
        headers=headers,
        body=body.strip() if sep else b"",
        content_id=part.headers.get("content-id"),
    )


def _render_http(response: InnerResponse) -> bytes:
    reason = HTTPStatus(response.status).phrase
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + response.body


def _part(response: InnerResponse) -> bytes:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id:
        head.append(f"Content-ID: {response.content_id}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + _render_http(response)


def render_batch(items: list[InnerResponse | list[InnerResponse]]) -> tuple[str, bytes]:
    """(content type, body): a response per item; a list renders as a change set response."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    out = b""
    for item in items:
        out += f"--{boundary}\r\n".encode()
        if isinstance(item, list):
            inner = f"changesetresponse_{uuid.uuid4()}"
            out += f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
            for response in item:
                out += f"--{inner}\r\n".encode() + _part(response) + b"\r\n"
            out += f"--{inner}--\r\n".encode()
        else:
            out += _part(item) + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/mixed; boundary={boundary}", out
