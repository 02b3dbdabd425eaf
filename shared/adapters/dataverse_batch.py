"""Callback imports on Dataverse: numbers identified in one `$batch`, Phone Calls created and
queued in another (one change set per request: the activity and its queue item, or neither)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

from shared.adapters.dataverse import (
    API,
    DUPLICATE_CODES,
    ENTITY_SET,
    NAME_COLUMN,
    PHONE_COLUMNS,
    DataverseClient,
    DataverseError,
    Response,
)
from shared.domain.callbacks import CallbackActivity, WriteOutcome, WriteResult
from shared.domain.customers import CustomerRef

MAX_BATCH_PARTS = 1000  # Dataverse's limit of requests in one $batch


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DataverseCallbacks:
    """The callback import's Dataverse side; two requests per batch of callbacks."""

    def __init__(self, client: DataverseClient, *, numbers_per_query: int = 25) -> None:
        self.client = client
        # Numbers per GET: keeps each URL (numbers x phone columns) well under the URL limits.
        self.numbers_per_query = numbers_per_query

    # ------------------------------------------------------------------ identification

    def identify(self, numbers: Sequence[str]) -> dict[str, tuple[CustomerRef, ...]]:
        """Contacts, accounts and leads holding each number in a phone column (§5)."""
        wanted = list(dict.fromkeys(numbers))
        queries: list[tuple[Sequence[str], str]] = []
        for chunk in _chunks(wanted, self.numbers_per_query):
            values = ",".join(_odata_string(n) for n in chunk)
            for entity, columns in PHONE_COLUMNS.items():
                condition = " or ".join(
                    f"Microsoft.Dynamics.CRM.In(PropertyName='{c}',PropertyValues=[{values}])"
                    for c in columns
                )
                select = ",".join((f"{entity.value}id", NAME_COLUMN[entity], *columns))
                queries.append(
                    (
                        chunk,
                        f"{ENTITY_SET[entity]}?$select={select}"
                        f"&$filter={quote(condition, safe='')}",
                    )
                )
        found: dict[str, dict[str, CustomerRef]] = {n: {} for n in wanted}
        entities = [e for _ in _chunks(wanted, self.numbers_per_query) for e in PHONE_COLUMNS]
        responses: list[Response] = []
        for part in _chunks([path for _, path in queries], MAX_BATCH_PARTS):
            responses.extend(self.client.batch_get(part))
        for entity, response in zip(entities, responses, strict=True):
            if response.status >= 400:
                raise _part_error(response)
            for row in response.body.get("value", []):
                ref = CustomerRef(
                    entity, row[f"{entity.value}id"], row.get(NAME_COLUMN[entity]) or ""
                )
                for column in PHONE_COLUMNS[entity]:
                    number = row.get(column)
                    if number in found:
                        found[number][f"{entity.value}:{ref.id}"] = ref
        return {number: tuple(refs.values()) for number, refs in found.items()}

    # ------------------------------------------------------------------ the write

    def write(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        """Create each Phone Call and add it to its queue, atomically per activity.

        An activity whose id exists already was written by an earlier run (its change set
        committed both parts): EXISTED, not an error. Keyed by activity id.
        """
        results: dict[str, WriteResult] = {}
        for chunk in _chunks(list(activities), MAX_BATCH_PARTS // 2):
            results.update(self._write_batch(chunk))
        return results

    def _write_batch(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        if not activities:
            return {}
        boundary = f"batch_{uuid.uuid4()}"
        payload = "".join(
            self._changeset(boundary, activity, 2 * i + 1) for i, activity in enumerate(activities)
        )
        payload += f"--{boundary}--\r\n"
        reply = self.client.request(
            "POST",
            "$batch",
            raw=payload.encode("utf-8"),
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                # A failed change set must not stop the others (each is one callback).
                "Prefer": "odata.continue-on-error",
            },
        )
        body = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
        groups = split_batch_response(body, reply.headers.get("Content-Type", ""))
        results: dict[str, WriteResult] = {}
        for i, activity in enumerate(activities):
            group = groups[i] if i < len(groups) else []
            results[activity.activity_id] = _outcome(group)
        return results

    def _changeset(self, boundary: str, activity: CallbackActivity, content_id: int) -> str:
        changeset = f"changeset_{uuid.uuid4()}"
        target = {
            "activityid": activity.activity_id,
            "@odata.type": "Microsoft.Dynamics.CRM.phonecall",
        }
        parts = [
            self._part(changeset, content_id, "phonecalls", phone_call_body(activity)),
            self._part(
                changeset,
                content_id + 1,
                f"queues({activity.queue_id})/Microsoft.Dynamics.CRM.AddToQueue",
                {"Target": target},
            ),
        ]
        return (
            f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
            + "".join(parts)
            + f"--{changeset}--\r\n"
        )

    def _part(self, changeset: str, content_id: int, path: str, body: dict[str, Any]) -> str:
        return (
            f"--{changeset}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n"
            f"POST {self.client.org_url}{API}{path} HTTP/1.1\r\n"
            f"Content-Type: application/json\r\n\r\n{json.dumps(body)}\r\n"
        )


def phone_call_body(activity: CallbackActivity) -> dict[str, Any]:
    """The Web API body of a callback Phone Call (§5: Regarding and From only for one match)."""
    body: dict[str, Any] = {
        "activityid": activity.activity_id,
        "subject": activity.subject,
        "description": activity.description,
        "phonenumber": activity.phone_number,
        "directioncode": False,  # the customer asked for the call; From is the customer
    }
    customer = activity.customer
    if customer is not None:
        record = f"/{ENTITY_SET[customer.entity]}({customer.id})"
        body[f"regardingobjectid_{customer.entity.value}_phonecall@odata.bind"] = record
        body["phonecall_activity_parties"] = [
            {f"partyid_{customer.entity.value}@odata.bind": record, "participationtypemask": 1}
        ]
    return body


def _part_error(response: Response) -> DataverseError:
    body = response.body if isinstance(response.body, dict) else {}
    error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    return DataverseError(
        response.status, str(error.get("code", "")), str(error.get("message", ""))[:300]
    )


def _outcome(group: list[Response]) -> WriteResult:
    if not group:
        return WriteResult(WriteOutcome.FAILED, "no response for this change set")
    failed = next((r for r in group if r.status >= 400), None)
    if failed is None:
        return WriteResult(WriteOutcome.CREATED)
    error = _part_error(failed)
    if error.code in DUPLICATE_CODES or error.status in (409, 412):
        return WriteResult(WriteOutcome.EXISTED)
    return WriteResult(
        WriteOutcome.FAILED, f"Dataverse {error.status} {error.code}: {error.message}"
    )


def _boundary(content_type: str) -> str:
    for piece in content_type.split(";"):
        name, _, value = piece.strip().partition("=")
        if name.lower() == "boundary":
            return value.strip('"')
    raise DataverseError(502, "", "a $batch response without a boundary")


def split_batch_response(body: bytes, content_type: str) -> list[list[Response]]:
    """A `$batch` response, one group per top-level request: a change set's responses, or the
    single response (the error, when a change set failed as a whole)."""
    groups: list[list[Response]] = []
    for head, content in _parts(body.decode("utf-8"), _boundary(content_type)):
        inner_type = head.get("content-type", "")
        if inner_type.lower().startswith("multipart/mixed"):
            inner = _parts(content, _boundary(inner_type))
            groups.append([_http_response(c) for _, c in inner])
        else:
            groups.append([_http_response(content)])
    return groups


def _parts(text: str, boundary: str) -> list[tuple[dict[str, str], str]]:
    text = text.replace("\r\n", "\n")
    out: list[tuple[dict[str, str], str]] = []
    for chunk in text.split(f"--{boundary}")[1:]:
        if chunk.startswith("--"):
            break
        head, _, content = chunk.lstrip("\n").partition("\n\n")
        headers = {}
        for line in head.split("\n"):
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        out.append((headers, content.strip("\n")))
    return out


def _http_response(content: str) -> Response:
    status_line, _, rest = content.partition("\n")
    head, _, payload = rest.partition("\n\n")
    headers = {}
    for line in head.split("\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip()] = value.strip()
    payload = payload.strip()
    parsed: Any = payload
    if payload.startswith("{"):
        try:
            parsed = json.loads(payload)
        except ValueError:
            parsed = payload
    return Response(int(status_line.split(" ")[1]), headers, parsed)
