"""The ACS SDKs' failures as our errors (shared/adapters/acs_access.acs_errors): a dropped or
timed-out answer is a 503 to retry, like no answer at all, never an unhandled 500."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from shared.adapters.acs import AcsTelephony
from shared.adapters.acs_identity import AcsIdentity
from shared.errors import DependencyUnavailable, TelephonyError


class FailingIdentityClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_token(self, *_: Any, **__: Any) -> Any:
        raise self.error


def identity_failing_with(error: Exception) -> AcsIdentity:
    identity = AcsIdentity("endpoint=https://acs.example;accesskey=a2V5")
    identity._client = FailingIdentityClient(error)  # type: ignore[assignment]
    return identity


@pytest.mark.parametrize(
    "error",
    [
        ServiceRequestError("no connection"),
        ServiceResponseError("read timed out"),
        HttpResponseError(response=type("R", (), {"status_code": 503, "reason": "x"})()),
    ],
    ids=["unreachable", "answer-lost", "503"],
)
def test_transport_failures_and_5xx_are_dependency_unavailable(error: Exception) -> None:
    with pytest.raises(DependencyUnavailable):
        identity_failing_with(error).voip_token("8:acs:anna")


def test_a_refusal_is_a_telephony_error_with_acs_status() -> None:
    refused = HttpResponseError(response=type("R", (), {"status_code": 404, "reason": "x"})())
    with pytest.raises(TelephonyError) as caught:
        identity_failing_with(refused).voip_token("8:acs:nobody")
    assert caught.value.status == 404


def test_a_lost_call_automation_answer_is_dependency_unavailable_too() -> None:
    telephony = AcsTelephony("endpoint=https://acs.example;accesskey=a2V5")

    def lost() -> None:
        raise ServiceResponseError("read timed out")

    with pytest.raises(DependencyUnavailable):
        telephony._call("answer", lost)
