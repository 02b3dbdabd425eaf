"""Cases (Dataverse `incidents`) for the CaseDialog workflow: a customer's open cases, one case,
a new case, and a Phone Call activity set regarding a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from shared.adapters.dataverse import CLOSED_CODES, DataverseClient, DataverseError
from shared.domain.customers import CustomerRef
from shared.domain.workflows import CaseRef

SELECT = "incidentid,title,ticketnumber,statecode,statuscode,createdon"
CASE_ORIGIN_PHONE = 1  # caseorigincode: Phone
ACTIVE = 0  # statecode
SETS = {"contact": "contacts", "account": "accounts"}


def case_from(row: dict[str, Any]) -> CaseRef:
    created = row.get("createdon")
    return CaseRef(
        id=str(row["incidentid"]),
        title=str(row.get("title") or ""),
        ticket_number=str(row.get("ticketnumber") or ""),
        state=int(row.get("statecode") or 0),
        status=int(row.get("statuscode") or 0),
        created_on=datetime.fromisoformat(created.replace("Z", "+00:00")) if created else None,
    )


class DataverseCases:
    def __init__(self, client: DataverseClient, *, max_cases: int = 50) -> None:
        self.client, self.max_cases = client, max_cases

    def open_cases(self, customer: CustomerRef) -> list[CaseRef]:
        """The customer's active cases (statecode 0), newest first."""
        condition = f"_customerid_value eq {customer.id} and statecode eq {ACTIVE}"
        reply = self.client.request(
            "GET",
            f"incidents?$select={SELECT}&$filter={quote(condition, safe='')}"
            f"&$orderby=createdon desc&$top={self.max_cases}",
        )
        return [case_from(row) for row in reply.body.get("value", [])]

    def case(self, case_id: str) -> CaseRef | None:
        try:
            reply = self.client.request("GET", f"incidents({case_id})?$select={SELECT}")
        except DataverseError as exc:
            if exc.status == 404:
                return None
            raise
        return case_from(reply.body)

    def customer_of(self, case_id: str) -> str | None:
        """The id of the case's customer (a contact or an account)."""
        try:
            reply = self.client.request("GET", f"incidents({case_id})?$select=_customerid_value")
        except DataverseError as exc:
            if exc.status == 404:
                return None
            raise
        value = reply.body.get("_customerid_value")
        return str(value) if value else None

    def create_case(
        self, case_id: str, title: str, customer: CustomerRef, owner_user_id: str
    ) -> CaseRef:
        """Create the case with our id (a repeat finds the first one: 412 duplicate)."""
        body = {
            "incidentid": case_id,
            "title": title,
            "caseorigincode": CASE_ORIGIN_PHONE,
            f"customerid_{customer.entity.value}@odata.bind": (
                f"/{SETS[customer.entity.value]}({customer.id})"
            ),
            "ownerid@odata.bind": f"/systemusers({owner_user_id})",
        }
        try:
            self.client.request("POST", "incidents", body=body)
        except DataverseError as exc:
            if exc.status != 412:
                raise
        made = self.case(case_id)
        if made is None:  # pragma: no cover - created a moment ago
            raise DataverseError(404, "", f"case {case_id} not found after create")
        return made

    def set_regarding_case(self, activity_id: str, case_id: str) -> bool:
        """The open activity regards the case; False when it is completed already."""
        try:
            self.client.request(
                "PATCH",
                f"phonecalls({activity_id})",
                body={"regardingobjectid_incident_phonecall@odata.bind": f"/incidents({case_id})"},
                headers={"If-Match": "*"},
            )
        except DataverseError as exc:
            if exc.code in CLOSED_CODES or exc.status == 400:
                return False
            raise
        return True
