"""Dataverse Web API errors: `{"error": {"code": "0x...", "message": ...}}` with its status."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emulators.dataverse.schema import Table

# Codes from Microsoft's "Web service error codes" list (hex as the Web API renders them).
QUERY_PARSE = "0x80060888"  # OData URI / query parse errors
PAYLOAD = "0x80048d19"  # "Error identified in Payload provided by the user for Entity ..."
NOT_FOUND = "0x80040217"  # ObjectDoesNotExist
DUPLICATE = "0x80040237"  # DuplicateRecord: "Cannot insert duplicate key."
VERSION_MISMATCH = "0x80060882"  # ConcurrencyVersionMismatch
INVALID_STATE = "0x80048408"  # InvalidStateCodeStatusCode
CLOSED_ACTIVITY = "0x80040230"  # CannotUpdateObjectBecauseItIsInactive
MAX_LENGTH = "0x80044331"  # string longer than the column's MaxLength
THROTTLED = "0x80072322"  # service protection: number of requests
RESOURCE_NOT_FOUND = "0x8006088a"  # "Resource not found for the segment '...'"
INVALID_ARGUMENT = "0x80040203"


class ODataError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


def query_error(message: str) -> ODataError:
    return ODataError(400, QUERY_PARSE, message)


def property_not_found(name: str, table: Table) -> ODataError:
    return query_error(f"Could not find a property named '{name}' on type '{table.edm_type}'.")


def payload_error(table: Table, inner: str) -> ODataError:
    return ODataError(
        400,
        PAYLOAD,
        f"Error identified in Payload provided by the user for Entity :'{table.entity_set}', "
        "For more information on this error please follow this help link "
        "https://go.microsoft.com/fwlink/?linkid=2195293  ----> InnerException : "
        f"Microsoft.OData.ODataException: {inner}",
    )


def unknown_body_property(name: str, table: Table) -> ODataError:
    return payload_error(
        table,
        f"The property '{name}' does not exist on type '{table.edm_type}'. Make sure to only "
        "use property names that are defined by the type or mark the type as open type.",
    )


def record_not_found(table: Table, record_id: str) -> ODataError:
    return ODataError(
        404, NOT_FOUND, f"Entity '{table.logical_name}' With Id = {record_id} Does Not Exist"
    )
