"""The Dataverse Web API v9.2: one session, throttling honoured, `$batch`, the Crm port."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from shared.adapters.http import ThrottledHttp
from shared.domain.activity import (
    NOTES_SUBJECT,
    ActivityNotes,
    ActivityParty,
    PhoneCallActivity,
    UnresolvedParty,
    notes_annotation_id,
)
from shared.domain.customers import (
    ENTITY_SETS,
    NAME_COLUMNS,
    CustomerEntity,
    CustomerRef,
    DirectoryEntry,
    identifying_columns,
)
from shared.domain.directory_search import DirectoryQuery, search_filter, selected_columns
from shared.domain.moments import iso_z
from shared.errors import DependencyUnavailable

if TYPE_CHECKING:
    pass

API = "/api/data/v9.2/"
T = TypeVar("T")
DUPLICATE_CODES = {"0x80040237", "0x80060892"}  # duplicate key; duplicate record id
CLOSED_CODES = {"0x80040203", "0x8004f508"}  # invalid state for update; closed activity

# Identification's columns per table: the record's own numbers (E.164 is stored, §1.1); the
# directory searches every phone column (shared/domain/customers.py has them all).
PHONE_COLUMNS: dict[CustomerEntity, tuple[str, ...]] = {
    entity: identifying_columns(entity) for entity in CustomerEntity
}
ENTITY_SET = {entity: ENTITY_SETS[entity.value] for entity in CustomerEntity}
NAME_COLUMN = {entity: NAME_COLUMNS[entity.value] for entity in CustomerEntity}


class DataverseError(Exception):
    """Dataverse answered with an error: its HTTP status and the `0x...` code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Dataverse {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class DataverseClient:
    """HTTP to one Dataverse org. 429/503 wait their `Retry-After` (bounded), then give up."""

    def __init__(
        self,
        org_url: str,
        token: Callable[[], str],
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
        max_attempts: int = 4,
        max_retry_wait_seconds: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 10,
    ) -> None:
        self.org_url = org_url.rstrip("/")
        self.http = ThrottledHttp(
            "Dataverse",
            token,
            ca_bundle=ca_bundle,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            max_retry_wait_seconds=max_retry_wait_seconds,
            headers={
                "Accept": "application/json",
                "OData-MaxVersion": "4.0",
                "OData-Version": "4.0",
            },
            sleep=sleep,
            pool_size=pool_size,
        )

    @property
    def requests_sent(self) -> int:
        return self.http.requests_sent

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Response:
        """One Web API call (path relative to /api/data/v9.2/); raises DataverseError."""
        all_headers = dict(headers or {})
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        reply = self.http.send(method, f"{self.org_url}{API}{path}", headers=all_headers, data=data)
        if reply.status_code in self.http.retryable:
            raise DependencyUnavailable(
                f"Dataverse is throttling or unavailable ({reply.status_code})"
            )
        if reply.status_code >= 400:
            raise _error(reply.status_code, reply.text)
        content_type = reply.headers.get("Content-Type", "")
        parsed: Any = reply.content
        if "json" in content_type and reply.content:
            parsed = reply.json()
        return Response(reply.status_code, dict(reply.headers), parsed)

    def batch_changesets(
        self, changesets: Sequence[Sequence[BatchRequest]]
    ) -> list[list[Response]]:
        """Change sets in one `$batch` (each all or nothing; a failed one does not stop the
        others): per change set, its responses, or the one error response when it failed.
        Content-IDs are numbered across the batch; `$n` refers to one within a change set."""
        if not changesets:
            return []
        boundary = f"batch_{uuid.uuid4()}"
        org_api = f"{self.org_url}{API}"
        content_id = 0
        parts = []
        for requests_ in changesets:
            changeset = f"changeset_{uuid.uuid4()}"
            body = ""
            first = content_id + 1
            for request in requests_:
                content_id += 1
                path = request.path
                if path.startswith("$") and path[1:].isdigit():  # relative to this change set
                    path = f"${first + int(path[1:]) - 1}"
                body += _changeset_part(
                    org_api, changeset, content_id, BatchRequest(request.method, path, request.body)
                )
            parts.append(
                f"--{boundary}\r\nContent-Type: multipart/mixed; boundary={changeset}"
                f"\r\n\r\n{body}--{changeset}--\r\n"
            )
        payload = ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8")
        reply = self.request(
            "POST",
            "$batch",
            raw=payload,
            headers={
                "Content-Type": f"multipart/mixed; boundary={boundary}",
                "Prefer": "odata.continue-on-error",
            },
        )
        raw = reply.body if isinstance(reply.body, bytes) else str(reply.body).encode()
        return split_batch_response(raw, reply.headers.get("Content-Type", ""))

    def ping(self) -> None:
        """Reachability and credentials: WhoAmI, one request."""
        self.request("GET", "WhoAmI")

    def batch_get(self, paths: Sequence[str]) -> list[Response]:
        """Several GETs in one `$batch` round trip; one Response per path, in order."""
        boundary = f"batch_{uuid.uuid4()}"
        parts = [
            f"--{boundary}\r\nContent-Type: application/http\r\n"
            f"Content-Transfer-Encoding: binary\r\n\r\n"
            f"GET {self.org_url}{API}{p} HTTP/1.1\r\nAccept: application/json\r\n\r\n"
            for p in paths
        ]
        payload = ("".join(parts) + f"--{boundary}--\r\n").encode()
        reply = self.request(
            "POST",
            "$batch",
            raw=payload,
            headers={"Content-Type": f"multipart/mixed; boundary={boundary}"},
        )
        content_type = reply.headers.get("Content-Type", "")
        return parse_batch_response(
            reply.body if isinstance(reply.body, bytes) else str(reply.body).encode(), content_type
        )


def _changeset_part(org_api: str, changeset: str, content_id: int, request: BatchRequest) -> str:
    target = request.path if request.path.startswith("$") else f"{org_api}{request.path}"
    return (
        f"--{changeset}\r\nContent-Type: application/http\r\n"
        f"Content-Transfer-Encoding: binary\r\nContent-ID: {content_id}\r\n\r\n"
        f"{request.method} {target} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n"
        f"{json.dumps(request.body)}\r\n"
    )


def _error(status: int, text: str) -> DataverseError:
    try:
        error = json.loads(text).get("error", {})
    except (ValueError, AttributeError):
        error = {}
    return DataverseError(status, str(error.get("code", "")), str(error.get("message", ""))[:300])


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


def parse_batch_response(body: bytes, content_type: str) -> list[Response]:
    """Every response of a `$batch`, change sets flattened, in request order."""
    return [r for group in split_batch_response(body, content_type) for r in group]


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


def error_of(response: Response) -> DataverseError:
    """The error a response (a `$batch` part included) carries, as a DataverseError."""
    body = response.body if isinstance(response.body, dict) else {}
    error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    return DataverseError(
        response.status, str(error.get("code", "")), str(error.get("message", ""))[:300]
    )


def is_duplicate(error: DataverseError) -> bool:
    """A create that found its (deterministic) id taken: the work was done before."""
    return error.code in DUPLICATE_CODES or error.status in (409, 412)


def names_missing_column(error: DataverseError, column: str) -> bool:
    """Dataverse refused a write because `column` does not exist on the table (400)."""
    return error.status == 400 and f"'{column}'" in error.message


def warn_missing_column(column: str) -> None:
    import logging

    logging.getLogger(__name__).warning(
        "phonecall.%s does not exist: written without it; run `make dataverse-setup` "
        "(docs/dataverse-setup.md)",
        column,
    )


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class BatchRequest:
    """One request of a `$batch` change set; `path` is relative to the API, or `$<n>` for the
    entity created by the request with Content-ID n."""

    method: str
    path: str
    body: Any


def odata_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class DataverseCrm:
    """The Crm port: identification in one round trip, idempotent activity writes.

    `duration_column` is the custom column of the call's length in seconds
    (`<prefix>durationseconds`, made by `make dataverse-setup`)."""

    def __init__(
        self, client: DataverseClient, *, duration_column: str, max_matches: int = 10
    ) -> None:
        self.client = client
        self.duration_column = duration_column
        self.max_matches = max_matches

    def find_customers(self, number: str) -> tuple[CustomerRef, ...]:
        paths = []
        for entity, columns in PHONE_COLUMNS.items():
            condition = " or ".join(f"{c} eq {odata_string(number)}" for c in columns)
            select = f"{entity.value}id,{NAME_COLUMN[entity]}"
            paths.append(
                f"{ENTITY_SET[entity]}?$select={select}"
                f"&$filter={quote(condition, safe='')}&$top={self.max_matches}"
            )
        found: list[CustomerRef] = []
        for entity, response in zip(PHONE_COLUMNS, self.client.batch_get(paths), strict=True):
            if response.status >= 400:
                body = response.body if isinstance(response.body, dict) else {}
                error = body.get("error", {})
                raise DataverseError(
                    response.status, str(error.get("code", "")), str(error.get("message", ""))
                )
            for row in response.body.get("value", []):
                found.append(
                    CustomerRef(
                        entity, row[f"{entity.value}id"], row.get(NAME_COLUMN[entity]) or ""
                    )
                )
        return tuple(found)

    def search(self, query: DirectoryQuery, *, top: int) -> list[DirectoryEntry]:
        """Contacts, accounts, leads and D365 users by name or by the start of any phone
        number: one `$batch` of one GET per table, each at most `top` records."""
        entities = list(ENTITY_SETS)
        paths = [
            f"{ENTITY_SETS[entity]}?$select={','.join(selected_columns(entity))}"
            f"&$filter={quote(search_filter(entity, query), safe='')}"
            f"&$orderby={NAME_COLUMNS[entity]}&$top={top}"
            for entity in entities
        ]
        found: list[DirectoryEntry] = []
        for entity, response in zip(entities, self.client.batch_get(paths), strict=True):
            if response.status >= 400:
                raise error_of(response)
            for row in response.body.get("value", []):
                matched = query.match(entity, row) if query.is_number else None
                phones = (row.get(c) for c in selected_columns(entity)[2:])
                found.append(
                    DirectoryEntry(
                        entity,
                        str(row[f"{entity}id"]),
                        row.get(NAME_COLUMNS[entity]) or "",
                        matched.number if matched else next((p for p in phones if p), None),
                        matched,
                    )
                )
        return found

    def create_phone_call(self, activity: PhoneCallActivity) -> bool:
        body = phone_call_body(activity, duration_column=self.duration_column)
        try:
            created = self._create(body)
        except DataverseError as exc:
            if not names_missing_column(exc, self.duration_column):
                raise
            # The org lacks the seconds column (`make dataverse-setup` not run): keep the
            # activity, lose only the seconds, and say so.
            warn_missing_column(self.duration_column)
            del body[self.duration_column]
            created = self._create(body)
        if activity.notes_annotation is not None:  # a repeat writes it again: an upsert
            keep_notes_annotation(self.client, activity.activity_id, activity.notes_annotation)
        return created

    def _create(self, body: dict[str, Any]) -> bool:
        try:
            self.client.request("POST", "phonecalls", body=body)
        except DataverseError as exc:
            if is_duplicate(exc):
                return False
            raise
        return True

    def write_notes(self, activity_id: str, notes: ActivityNotes) -> bool:
        # The annotation first: a description that says "full notes attached" has them.
        if notes.annotation is not None:
            keep_notes_annotation(self.client, activity_id, notes.annotation)
        try:
            self.client.request(
                "PATCH",
                f"phonecalls({activity_id})",
                body={"description": notes.description},
                headers={"If-Match": "*"},
            )
        except DataverseError as exc:
            if exc.code in CLOSED_CODES or exc.status == 400:
                return False  # the description kept: so does the annotation it points to
            raise
        if notes.remove_annotation:
            remove_notes_annotation(self.client, activity_id)
        return True

    def reassign_phone_call(self, activity: PhoneCallActivity) -> bool:
        body = phone_call_body(activity, duration_column=self.duration_column)
        changed = {
            k: body[k]
            for k in ("subject", "description", "ownerid@odata.bind", "phonecall_activity_parties")
        }
        try:
            # The annotation first: a description that says "full notes attached" has them.
            # Every agent's notes only grow the text: no shorter notes to remove one for here.
            if activity.notes_annotation is not None:
                keep_notes_annotation(self.client, activity.activity_id, activity.notes_annotation)
            self.client.request(
                "PATCH",
                f"phonecalls({activity.activity_id})",
                body=changed,
                headers={"If-Match": "*"},
            )
        except DataverseError as exc:
            if exc.code in CLOSED_CODES or exc.status in (400, 404):
                return False
            raise
        return True


def annotation_body(activity_id: str, text: str) -> dict[str, Any]:
    """The Web API body of the note that keeps a call's whole notes (docs/phone-call-mapping.md)."""
    return {
        "subject": NOTES_SUBJECT,
        "notetext": text,
        "objectid_phonecall@odata.bind": f"/phonecalls({activity_id})",
        "objecttypecode": "phonecall",
    }


def keep_notes_annotation(client: DataverseClient, activity_id: str, text: str) -> None:
    """Create or update (an upsert: PATCH without If-Match) the activity's one notes annotation.
    A missing activity is Dataverse's 404 for the bound phonecall (raised)."""
    client.request(
        "PATCH",
        f"annotations({notes_annotation_id(activity_id)})",
        body=annotation_body(activity_id, text),
    )


def remove_notes_annotation(client: DataverseClient, activity_id: str) -> None:
    """Delete the notes annotation, if there is one (notes short enough for the description)."""
    try:
        client.request("DELETE", f"annotations({notes_annotation_id(activity_id)})")
    except DataverseError as exc:
        if exc.status != 404:
            raise


FROM, TO = 1, 2  # activityparty participationtypemask


def party_body(party: ActivityParty, mask: int) -> dict[str, Any]:
    """One `phonecall_activity_parties` item: a record bound by `partyid_<table>`, or an
    unresolved party (`addressused` alone, no partyid), as D365 keeps an unknown number."""
    if isinstance(party, UnresolvedParty):
        return {"addressused": party.address, "participationtypemask": mask}
    return {
        f"partyid_{party.entity}@odata.bind": f"/{_set_of(party.entity)}({party.id})",
        "participationtypemask": mask,
    }


def parties_body(
    from_party: ActivityParty | None, to_party: ActivityParty | None
) -> list[dict[str, Any]]:
    return [
        party_body(party, mask)
        for party, mask in ((from_party, FROM), (to_party, TO))
        if party is not None
    ]


def phone_call_body(activity: PhoneCallActivity, *, duration_column: str) -> dict[str, Any]:
    """The Web API body of a Phone Call activity (docs/phone-call-mapping.md)."""
    parties = parties_body(activity.from_party, activity.to_party)
    body: dict[str, Any] = {
        "activityid": activity.activity_id,
        "subject": activity.subject,
        "description": activity.description,
        "phonenumber": activity.phone_number,
        "directioncode": activity.outgoing,
        "actualstart": iso_z(activity.actual_start),
        "actualend": iso_z(activity.actual_end),
        "actualdurationminutes": activity.duration_minutes,
        duration_column: activity.duration_seconds,
        "ownerid@odata.bind": owner_bind("systemuser", activity.owner_user_id),
        "phonecall_activity_parties": parties,
    }
    if activity.regarding_case:
        body["regardingobjectid_incident_phonecall@odata.bind"] = (
            f"/incidents({activity.regarding_case})"
        )
    elif activity.regarding is not None:
        entity = activity.regarding.entity.value
        body[f"regardingobjectid_{entity}_phonecall@odata.bind"] = (
            f"/{ENTITY_SET[activity.regarding.entity]}({activity.regarding.id})"
        )
    return body


def owner_bind(entity: str, record_id: str) -> str:
    """`ownerid@odata.bind`: a user or a team (ownerid is a principal in Dataverse)."""
    return f"/{_set_of(entity)}({record_id})"


def _set_of(entity: str) -> str:
    return {
        "contact": "contacts",
        "account": "accounts",
        "lead": "leads",
        "systemuser": "systemusers",
        "team": "teams",
    }[entity]
