"""Media actions in a call: play, recognize DTMF, send DTMF, cancel all media operations."""

from __future__ import annotations

import threading
from typing import Any

from emulators.acs import media_files
from emulators.acs.delivery import now_iso
from emulators.acs.errors import AcsError
from emulators.acs.world.events import Events
from emulators.acs.world.identifiers import raw_id_of
from emulators.acs.world.model import (
    DEFAULT_INITIAL_SILENCE_SECONDS,
    DEFAULT_INTER_TONE_SECONDS,
    INITIAL_SILENCE,
    INJECTED,
    INTER_TONE,
    PLAY_CANCELLED,
    TONE_NAMES,
    Call,
    Recognize,
)


class Media(Events):
    """The media REST operations and the recognize timers."""

    def send_dtmf(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            tones = body.get("tones") or []
            if (
                not isinstance(tones, list)
                or not tones
                or any(str(t).lower() not in TONE_NAMES for t in tones)
            ):
                raise AcsError(400, "BadRequest", "Tones must be a non-empty list of DTMF tones.")
            participant = self._participant(call, body.get("targetParticipant"))
            context, callback = body.get("operationContext"), self._optional_callback(body)
            if self.take_fault("sendDtmf", "event"):
                self._emit(
                    call,
                    "SendDtmfTonesFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                call.sent_tones.append(
                    {
                        "to": participant.identifier["rawId"],
                        "tones": [str(t).lower() for t in tones],
                        "at": now_iso(),
                    }
                )
                self._emit(
                    call, "SendDtmfTonesCompleted", operation_context=context, callback_uri=callback
                )
            return {"operationContext": context}

    def play(self, cid: str, body: dict[str, Any]) -> None:
        with self._lock:
            call = self._connected(cid)
            sources = body.get("playSources") or []
            if not isinstance(sources, list) or not sources:
                raise AcsError(400, "BadRequest", "PlaySources must not be empty.")
            play_to = [raw_id_of(p) for p in body.get("playTo") or []]
            for raw in play_to:
                self._participant(call, {"rawId": raw})
            context, callback = body.get("operationContext"), self._optional_callback(body)
            loop = bool((body.get("playOptions") or {}).get("loop"))
            call.plays.append(
                {
                    "sources": sources,
                    "playTo": play_to or "all",
                    "loop": loop,
                    "operationContext": context,
                    "at": now_iso(),
                }
            )
            if self.take_fault("play", "event"):
                self._emit(
                    call,
                    "PlayFailed",
                    {"failedPlaySourceIndex": 0},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            files = [
                str((src.get("file") or {}).get("uri") or "")
                for src in sources
                if isinstance(src, dict) and src.get("kind") == "file"
            ]
            if files:
                # ACS downloads the files before it plays: off the lock, like the service.
                self._fetching += 1
                threading.Thread(
                    target=self._play_files,
                    args=(call, call.plays[-1], files, loop, context, callback),
                    daemon=True,
                ).start()
                return
            self._play_started(call, loop, context, callback)

    def _play_started(
        self, call: Call, loop: bool, context: str | None, callback: str | None
    ) -> None:
        self._emit(call, "PlayStarted", operation_context=context, callback_uri=callback)
        if loop:
            call.looping_plays.append((context, callback))
        else:
            self._emit(call, "PlayCompleted", operation_context=context, callback_uri=callback)

    def _play_files(
        self,
        call: Call,
        play: dict[str, Any],
        urls: list[str],
        loop: bool,
        context: str | None,
        callback: str | None,
    ) -> None:
        """Download each file source; the first that fails fails the play (PlayFailed with
        its index and ACS's result code), else the play goes on."""
        try:
            fetched = [media_files.fetch(url, verify=self._deliverer.verify) for url in urls]
            with self._lock:
                play["fetched"] = [f.to_json() for f in fetched]
                if self.calls.get(call.call_connection_id) is not call or not call.active:
                    return  # hung up (or the world was reset) meanwhile
                failed = next(((i, f) for i, f in enumerate(fetched) if f.result is not None), None)
                if failed is None:
                    play["outcome"] = "played"
                    self._play_started(call, loop, context, callback)
                    return
                code, sub_code, message = failed[1].result or media_files.DOWNLOAD_FAILED
                play["outcome"] = "failed"
                play["result"] = {"code": code, "subCode": sub_code, "message": message}
                self._emit(
                    call,
                    "PlayFailed",
                    {"failedPlaySourceIndex": failed[0]},
                    operation_context=context,
                    callback_uri=callback,
                    result=(code, sub_code, message),
                )
        finally:
            with self._lock:
                self._fetching -= 1

    def recognize(self, cid: str, body: dict[str, Any]) -> None:
        with self._lock:
            call = self._connected(cid)
            kind = body.get("recognizeInputType")
            if kind != "dtmf":
                raise AcsError(
                    400,
                    "BadRequest",
                    f"Recognize input type '{kind}' is not supported by the emulator (dtmf only).",
                )
            options = body.get("recognizeOptions") or {}
            participant = self._participant(call, options.get("targetParticipant"))
            if call.recognize is not None:
                raise AcsError(400, "8501", "A recognize operation is already running.")
            context, callback = body.get("operationContext"), self._optional_callback(body)
            if self.take_fault("recognize", "event"):
                self._emit(
                    call,
                    "RecognizeFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            dtmf = options.get("dtmfOptions") or {}
            call.recognize = Recognize(
                target_raw=str(participant.identifier["rawId"]),
                operation_context=context,
                callback_uri=callback,
                max_tones=int(dtmf.get("maxTonesToCollect") or 1),
                stop_tones=frozenset(str(t).lower() for t in dtmf.get("stopTones") or []),
                inter_tone_seconds=float(
                    dtmf.get("interToneTimeoutInSeconds") or DEFAULT_INTER_TONE_SECONDS
                ),
                prompts=list(
                    options.get("playPrompts")
                    or body.get("playPrompts")
                    or [p for p in (options.get("playPrompt"), body.get("playPrompt")) if p]
                ),
            )
            silence = float(
                options.get("initialSilenceTimeoutInSeconds") or DEFAULT_INITIAL_SILENCE_SECONDS
            )
            call.recognize.timer = self._timer(
                silence, self._recognize_timed_out, call.call_connection_id, call.recognize
            )

    def _recognize_timed_out(self, cid: str, recognize: Recognize) -> None:
        call = self.calls.get(cid)
        if call is None or call.recognize is not recognize:
            return
        call.recognize = None
        if recognize.tones:
            self._recognize_completed(call, recognize, INTER_TONE)
        else:
            self._emit(
                call,
                "RecognizeFailed",
                operation_context=recognize.operation_context,
                callback_uri=recognize.callback_uri,
                result=INITIAL_SILENCE,
            )

    def _recognize_completed(
        self, call: Call, recognize: Recognize, result: tuple[int, int, str]
    ) -> None:
        self._cancel(recognize.timer)
        call.recognize = None
        self._emit(
            call,
            "RecognizeCompleted",
            {
                "recognitionType": "dtmf",
                "dtmfResult": {"tones": list(recognize.tones)},
            },
            operation_context=recognize.operation_context,
            callback_uri=recognize.callback_uri,
            result=result,
        )

    def cancel_media(self, cid: str) -> None:
        with self._lock:
            call = self._call(cid)
            for context, callback in call.looping_plays:
                self._emit(
                    call,
                    "PlayCanceled",
                    operation_context=context,
                    callback_uri=callback,
                    result=PLAY_CANCELLED,
                )
            call.looping_plays.clear()
            if call.recognize is not None:
                recognize = call.recognize
                self._cancel(recognize.timer)
                call.recognize = None
                self._emit(
                    call,
                    "RecognizeCanceled",
                    operation_context=recognize.operation_context,
                    callback_uri=recognize.callback_uri,
                    result=PLAY_CANCELLED,
                )
