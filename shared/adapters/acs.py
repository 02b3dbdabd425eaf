"""ACS Call Automation through its SDK: the Telephony port (one client per process)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from shared.adapters.acs_access import AcsAccess, acs_errors
from shared.errors import TelephonyError

if TYPE_CHECKING:
    from azure.communication.callautomation import CallAutomationClient

T = TypeVar("T")


# The SDK's DtmfTone values for each key of the keypad.
_DTMF_NAMES = {
    **dict(
        zip(
            "0123456789",
            ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
            strict=True,
        )
    ),
    "*": "asterisk",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
}


class AcsTelephony:
    def __init__(
        self,
        connection: str | AcsAccess,
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
        retry_total: int | None = None,
        pool_size: int = 10,
    ) -> None:
        self._pool_size = pool_size
        # None keeps the SDK's retry policy; the health probe passes 0 to answer fast.
        self._retry: dict[str, Any] = {} if retry_total is None else {"retry_total": retry_total}
        self._access = AcsAccess.of(connection)
        self._ca_bundle = ca_bundle
        self._timeout = timeout_seconds
        self._client: CallAutomationClient | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> CallAutomationClient:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from azure.communication.callautomation import CallAutomationClient

                    from shared.adapters.http_pool import pooled_session

                    options: dict[str, Any] = {
                        "session": pooled_session(self._pool_size),
                        "connection_timeout": self._timeout,
                        "read_timeout": self._timeout,
                        **self._retry,
                    }
                    if self._ca_bundle:
                        options["connection_verify"] = self._ca_bundle
                    if self._access.uses_identity:
                        self._client = CallAutomationClient(
                            self._access.endpoint, self._access.credential(), **options
                        )
                    else:
                        self._client = CallAutomationClient.from_connection_string(
                            self._access.connection_string, **options
                        )
        return self._client

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        with acs_errors(operation):
            return fn()

    @staticmethod
    def _identifier(raw_id: str) -> Any:
        from azure.communication.callautomation._shared.models import identifier_from_raw_id

        return identifier_from_raw_id(raw_id)

    @staticmethod
    def _phone(number: str | None) -> Any:
        if not number:
            return None
        from azure.communication.callautomation import PhoneNumberIdentifier

        return PhoneNumberIdentifier(number)

    def answer(
        self, incoming_call_context: str, *, callback_url: str, operation_context: str
    ) -> str:
        result = self._call(
            "answer",
            lambda: self.client.answer_call(
                incoming_call_context, callback_url, operation_context=operation_context
            ),
        )
        return str(result.call_connection_id)

    def reject(self, incoming_call_context: str, *, busy: bool = False) -> None:
        reason = "busy" if busy else None
        self._call(
            "reject",
            lambda: self.client.reject_call(incoming_call_context, call_reject_reason=reason),
        )

    def redirect(self, incoming_call_context: str, target: str) -> None:
        self._call(
            "redirect",
            lambda: self.client.redirect_call(incoming_call_context, self._identifier(target)),
        )

    def add_participant(
        self,
        connection_id: str,
        target: str,
        *,
        invitation_timeout: int,
        operation_context: str,
        caller_id: str | None = None,
        voip_headers: Mapping[str, str] | None = None,
    ) -> str | None:
        connection = self.client.get_call_connection(connection_id)
        result = self._call(
            "add participant",
            lambda: connection.add_participant(
                self._identifier(target),
                invitation_timeout=invitation_timeout,
                operation_context=operation_context,
                source_caller_id_number=self._phone(caller_id),
                voip_headers=dict(voip_headers) if voip_headers else None,
            ),
        )
        return result.invitation_id

    def cancel_add_participant(
        self, connection_id: str, invitation_id: str, *, operation_context: str
    ) -> None:
        connection = self.client.get_call_connection(connection_id)
        self._call(
            "cancel add participant",
            lambda: connection.cancel_add_participant_operation(
                invitation_id, operation_context=operation_context
            ),
        )

    def hang_up(self, connection_id: str) -> None:
        connection = self.client.get_call_connection(connection_id)
        try:
            self._call("hang up", lambda: connection.hang_up(is_for_everyone=True))
        except TelephonyError as exc:
            if exc.status != 404:  # already gone: that is what we wanted
                raise

    def create_call(
        self,
        target: str,
        *,
        callback_url: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> str:
        result = self._call(
            "create call",
            lambda: self.client.create_call(
                self._identifier(target),
                callback_url,
                operation_context=operation_context,
                source_caller_id_number=self._phone(caller_id),
            ),
        )
        return str(result.call_connection_id)

    def start_recording(self, server_call_id: str, *, state_callback_url: str) -> str:
        result = self._call(
            "start recording",
            lambda: self.client.start_recording(
                server_call_id=server_call_id, recording_state_callback_url=state_callback_url
            ),
        )
        return str(result.recording_id)

    def _connection(self, connection_id: str) -> Any:
        return self.client.get_call_connection(connection_id)

    def hold(self, connection_id: str, target: str, *, music_url: str | None) -> None:
        from azure.communication.callautomation import FileSource

        music = FileSource(music_url) if music_url else None
        self._call(
            "hold",
            lambda: self._connection(connection_id).hold(
                self._identifier(target), play_source=music, operation_context="hold"
            ),
        )

    def unhold(self, connection_id: str, target: str) -> None:
        self._call(
            "unhold",
            lambda: self._connection(connection_id).unhold(
                self._identifier(target), operation_context="unhold"
            ),
        )

    def mute(self, connection_id: str, target: str) -> None:
        self._call(
            "mute",
            lambda: self._connection(connection_id).mute_participant(
                self._identifier(target), operation_context="mute"
            ),
        )

    def send_dtmf(self, connection_id: str, tones: str, target: str) -> None:
        self._call(
            "send DTMF",
            lambda: self._connection(connection_id).send_dtmf_tones(
                [_DTMF_NAMES[t] for t in tones], self._identifier(target), operation_context="dtmf"
            ),
        )

    def transfer(
        self,
        connection_id: str,
        target: str,
        *,
        transferee: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> None:
        self._call(
            "transfer",
            lambda: self._connection(connection_id).transfer_call_to_participant(
                self._identifier(target),
                transferee=self._identifier(transferee),
                operation_context=operation_context,
                source_caller_id_number=self._phone(caller_id),
            ),
        )

    def remove_participant(
        self, connection_id: str, target: str, *, operation_context: str
    ) -> None:
        self._call(
            "remove participant",
            lambda: self._connection(connection_id).remove_participant(
                self._identifier(target), operation_context=operation_context
            ),
        )

    def _source(self, prompt: Any) -> Any:
        from azure.communication.callautomation import FileSource, TextSource

        return FileSource(prompt.url) if prompt.url else TextSource(text=prompt.text)

    def recognize_dtmf(
        self,
        connection_id: str,
        target: str,
        *,
        prompt: Any,
        operation_context: str,
        silence_timeout: int,
    ) -> None:
        self._call(
            "recognize",
            lambda: self._connection(connection_id).start_recognizing_media(
                "dtmf",
                self._identifier(target),
                play_prompt=self._source(prompt),
                initial_silence_timeout=silence_timeout,
                dtmf_max_tones_to_collect=1,
                interrupt_prompt=True,
                operation_context=operation_context,
            ),
        )

    def play(self, connection_id: str, prompt: Any, *, operation_context: str) -> None:
        self._call(
            "play",
            lambda: self._connection(connection_id).play_media(
                self._source(prompt), operation_context=operation_context
            ),
        )

    def ping(self) -> None:
        """Reachability and the access key: ACS answers 404 for a call that does not exist,
        401 for a wrong key."""
        connection = self.client.get_call_connection("health-probe")
        try:
            self._call("health probe", connection.get_call_properties)
        except TelephonyError as exc:
            if exc.status != 404:
                raise
