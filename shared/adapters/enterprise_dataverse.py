"""Dataverse for the enterprise-call sync: customers and already-logged calls of many numbers in
one `$batch`, and many Phone Call activities created (and completed) in one `$batch`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

from shared.adapters.dataverse import (
    API,
    ENTITY_SET,
    NAME_COLUMN,
    PHONE_COLUMNS,
    BatchRequest,
    DataverseClient,
    Response,
    chunks,
    error_of,
    is_duplicate,
    names_missing_column,
    phone_call_body,
    warn_missing_column,
)
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.enterprise_calls import (
    CrmView,
    EnterpriseActivity,
    LoggedCall,
    WriteResult,
    WriteStatus,
    parse_timestamp,
)
from shared.errors import DependencyUnavailable

T = TypeVar("T")

# Numbers per query: 6 phone columns x 20 numbers keeps each URL a few KB (it travels inside
# the $batch body, so the GET URL limit does not apply, but Dataverse parses each filter).
NUMBERS_PER_QUERY = 20
# A $batch holds at most 1000 requests; each activity takes two (create, complete).
ACTIVITIES_PER_BATCH = 250
MAX_BATCH_PARTS = 1000  # Dataverse's limit of requests in one $batch
RECEIVED, MADE = 4, 2  # phonecall statuscode of a completed inbound / outbound call


def _in(column: str, values: Sequence[str]) -> str:
    quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"Microsoft.Dynamics.CRM.In(PropertyName='{column}',PropertyValues=[{quoted}])"


def _odata_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DataverseEnterpriseCrm:
    """Batched reads and writes; Dataverse requests grow with batches, not with records.

    `duration_column`: the custom column of the call's length in seconds."""

    def __init__(self, client: DataverseClient, *, duration_column: str) -> None:
        self.client = client
        self.duration_column = duration_column

    # ------------------------------------------------------------------ reads

    def look_up(
        self,
        wanted: Sequence[tuple[str, str]],
        since: datetime,
        until: datetime,
        *,
        accounts_and_leads: bool,
    ) -> CrmView:
        """Customers of each number, and Phone Calls owned by the given users with those numbers
        that started in [since, until]; `wanted` is (owner systemuser id, E.164 number) pairs."""
        if not wanted:
            return CrmView()
        entities = list(PHONE_COLUMNS) if accounts_and_leads else [CustomerEntity.CONTACT]
        numbers = sorted({n for _, n in wanted})
        paths: list[tuple[str, CustomerEntity | None]] = []
        for chunk in chunks(numbers, NUMBERS_PER_QUERY):
            for entity in entities:
                columns = PHONE_COLUMNS[entity]
                condition = " or ".join(_in(c, chunk) for c in columns)
                select = ",".join((f"{entity.value}id", NAME_COLUMN[entity], *columns))
                paths.append(
                    (
                        f"{ENTITY_SET[entity]}?$select={select}"
                        f"&$filter={quote(condition, safe='')}",
                        entity,
                    )
                )
            owners = sorted({o for o, n in wanted if n in chunk})
            condition = (
                "("
                + " or ".join(f"_ownerid_value eq {o}" for o in owners)
                + f") and {_in('phonenumber', chunk)}"
                f" and actualstart ge {_odata_time(since)} and actualstart le {_odata_time(until)}"
            )
            paths.append(
                (
                    "phonecalls?$select=activityid,phonenumber,actualstart,_ownerid_value"
                    f"&$filter={quote(condition, safe='')}",
                    None,
                )
            )
        customers: dict[str, list[CustomerRef]] = {}
        logged: list[LoggedCall] = []
        wanted_numbers = set(numbers)
        responses: list[Response] = []
        for part in chunks([p for p, _ in paths], MAX_BATCH_PARTS):
            responses.extend(self.client.batch_get(part))
        for (_, kind), response in zip(paths, responses, strict=True):
            for row in self._rows(response):
                if kind is None:
                    started = parse_timestamp(row.get("actualstart"))
                    if started is not None and row.get("phonenumber"):
                        logged.append(
                            LoggedCall(
                                str(row["activityid"]).lower(),
                                str(row.get("_ownerid_value") or "").lower(),
                                str(row["phonenumber"]),
                                started,
                            )
                        )
                    continue
                ref = CustomerRef(
                    kind, str(row[f"{kind.value}id"]), row.get(NAME_COLUMN[kind]) or ""
                )
                for number in {row.get(c) for c in PHONE_COLUMNS[kind]} & wanted_numbers:
                    customers.setdefault(str(number), []).append(ref)
        return CrmView({n: tuple(refs) for n, refs in customers.items()}, tuple(logged))

    def _rows(self, response: Response) -> list[dict[str, Any]]:
        """The rows of one batched GET, following `@odata.nextLink` (rare: 5000 per page)."""
        _raise_for(response)
        body = response.body if isinstance(response.body, dict) else {}
        rows = list(body.get("value", []))
        next_link = body.get("@odata.nextLink")
        while next_link:
            page = self.client.request("GET", str(next_link).split(API, 1)[-1]).body
            rows.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
        return rows

    # ------------------------------------------------------------------ writes

    def create_activities(self, activities: Sequence[EnterpriseActivity]) -> dict[str, WriteResult]:
        """Create each activity and complete it, atomically per activity (one change set
        each), many per `$batch`; one failure does not stop the others."""
        results: dict[str, WriteResult] = {}
        for chunk in chunks(activities, ACTIVITIES_PER_BATCH):
            written, lacking = self._create_batch(chunk, with_seconds=True)
            results.update(written)
            if lacking:
                # The org lacks the seconds column: the calls go in without it (one more batch).
                warn_missing_column(self.duration_column)
                results.update(self._create_batch(lacking, with_seconds=False)[0])
        return results

    def _create_batch(
        self, activities: Sequence[EnterpriseActivity], *, with_seconds: bool
    ) -> tuple[dict[str, WriteResult], list[EnterpriseActivity]]:
        """The results, and the activities refused only for the missing seconds column."""
        # One change set per call: create the Phone Call, then complete it ($1 is the create).
        groups = self.client.batch_changesets(
            [
                [
                    BatchRequest(
                        "POST",
                        "phonecalls",
                        self._body(item, with_seconds=with_seconds),
                    ),
                    BatchRequest(
                        "PATCH",
                        "$1",
                        {
                            "statecode": 1,
                            "statuscode": MADE if item.activity.outgoing else RECEIVED,
                        },
                    ),
                ]
                for item in activities
            ]
        )
        results: dict[str, WriteResult] = {}
        lacking: list[EnterpriseActivity] = []
        for i, item in enumerate(activities):
            group = groups[i] if i < len(groups) else []
            failed = next((r for r in group if r.status >= 400), None)
            if (
                with_seconds
                and failed is not None
                and names_missing_column(error_of(failed), self.duration_column)
            ):
                lacking.append(item)
            elif not group:
                results[item.activity.activity_id] = WriteResult(
                    WriteStatus.RETRY, "no answer in the batch"
                )
            elif failed is None:
                results[item.activity.activity_id] = WriteResult(WriteStatus.CREATED)
            else:
                results[item.activity.activity_id] = _failure(failed)
        return results, lacking

    def _body(self, item: EnterpriseActivity, *, with_seconds: bool) -> dict[str, Any]:
        body = phone_call_body(item.activity, duration_column=self.duration_column)
        if not with_seconds:
            del body[self.duration_column]
        return {**body, "category": item.category}


def _failure(response: Response) -> WriteResult:
    error = error_of(response)
    code, message = error.code, error.message
    if is_duplicate(error):
        return WriteResult(WriteStatus.EXISTS)
    if response.status in (429, 503) or response.status >= 500:
        return WriteResult(WriteStatus.RETRY, f"{response.status} {code}".strip())
    return WriteResult(WriteStatus.REFUSED, f"{response.status} {code}: {message}")


def _raise_for(response: Response) -> None:
    if response.status < 400:
        return
    if response.status in (429, 503):
        raise DependencyUnavailable(f"Dataverse is throttling or unavailable ({response.status})")
    raise error_of(response)
