"""Dataverse's own answer to "may this user read that Phone Call?": a read as that user
(the CallerObjectId impersonation header), which Dataverse's security roles decide."""

from __future__ import annotations

from shared.adapters.dataverse import DataverseClient, DataverseError
from shared.errors import DependencyUnavailable


class DataverseActivityAccess:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client

    def may_read_phone_call(self, activity_id: str, viewer_object_id: str) -> bool:
        try:
            self.client.request(
                "GET",
                f"phonecalls({activity_id})?$select=activityid",
                headers={"CallerObjectId": viewer_object_id},
            )
        except DataverseError as exc:
            # 403: no read access; 404: no such row, or the viewer is no user of the org.
            if exc.status in (403, 404):
                return False
            # Anything else is the org refusing the app (its token, its impersonation right):
            # no answer for the viewer, a 503 to try again, not an unhandled 500.
            raise DependencyUnavailable(
                f"Dataverse could not check read access ({exc.status} {exc.code})"
            ) from exc
        return True
