"""Callback imports on Dataverse: numbers identified in one `$batch`, Phone Calls created and
queued in another (one change set per request: the activity and its queue item, or neither)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from shared.adapters.dataverse import (
    ENTITY_SET,
    NAME_COLUMN,
    PHONE_COLUMNS,
    BatchRequest,
    DataverseClient,
    Response,
    chunks,
    error_of,
    is_duplicate,
    odata_string,
    owner_bind,
    parties_body,
)
from shared.domain.callbacks import CallbackActivity, WriteOutcome, WriteResult
from shared.domain.customers import CustomerRef
from shared.domain.moments import iso_z

MAX_BATCH_PARTS = 1000  # Dataverse's limit of requests in one $batch


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
        for chunk in chunks(wanted, self.numbers_per_query):
            values = ",".join(odata_string(n) for n in chunk)
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
        entities = [e for _ in chunks(wanted, self.numbers_per_query) for e in PHONE_COLUMNS]
        responses: list[Response] = []
        for part in chunks([path for _, path in queries], MAX_BATCH_PARTS):
            responses.extend(self.client.batch_get(part))
        for entity, response in zip(entities, responses, strict=True):
            if response.status >= 400:
                raise error_of(response)
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
        for chunk in chunks(list(activities), MAX_BATCH_PARTS // 2):
            results.update(self._write_batch(chunk))
        return results

    def _write_batch(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        # One change set per callback: the Phone Call and its queue item, or neither.
        groups = self.client.batch_changesets(
            [
                [
                    BatchRequest("POST", "phonecalls", phone_call_body(activity)),
                    BatchRequest(
                        "POST",
                        f"queues({activity.queue_id})/Microsoft.Dynamics.CRM.AddToQueue",
                        {
                            "Target": {
                                "activityid": activity.activity_id,
                                "@odata.type": "Microsoft.Dynamics.CRM.phonecall",
                            }
                        },
                    ),
                ]
                for activity in activities
            ]
        )
        return {
            activity.activity_id: _outcome(groups[i] if i < len(groups) else [])
            for i, activity in enumerate(activities)
        }


def phone_call_body(activity: CallbackActivity) -> dict[str, Any]:
    """The Web API body of a callback Phone Call: a call to make (outgoing, due by
    `scheduledend`), the customer as To and Regarding only for one match (§5)."""
    body: dict[str, Any] = {
        "activityid": activity.activity_id,
        "subject": activity.subject,
        "description": activity.description,
        "phonenumber": activity.phone_number,
        "directioncode": True,  # the agent is to call the customer back
    }
    if activity.scheduled_start is not None:
        body["scheduledstart"] = iso_z(activity.scheduled_start)
    if activity.scheduled_end is not None:
        body["scheduledend"] = iso_z(activity.scheduled_end)
    if activity.owner is not None:
        body["ownerid@odata.bind"] = owner_bind(activity.owner.entity, activity.owner.id)
    customer = activity.customer
    if customer is not None:
        record = f"/{ENTITY_SET[customer.entity]}({customer.id})"
        body[f"regardingobjectid_{customer.entity.value}_phonecall@odata.bind"] = record
    parties = parties_body(None, activity.to_party)
    if parties:
        body["phonecall_activity_parties"] = parties
    return body


def _outcome(group: list[Response]) -> WriteResult:
    if not group:
        return WriteResult(WriteOutcome.FAILED, "no response for this change set")
    failed = next((r for r in group if r.status >= 400), None)
    if failed is None:
        return WriteResult(WriteOutcome.CREATED)
    error = error_of(failed)
    if is_duplicate(error):
        return WriteResult(WriteOutcome.EXISTED)
    return WriteResult(
        WriteOutcome.FAILED, f"Dataverse {error.status} {error.code}: {error.message}"
    )
