"""Uploaded prompts (§7 2.3 3b; docs/pools.md "Prompts"): the upload's checks (what ACS plays,
size, length), total over arbitrary bytes; the prompt setting in a pool's actions; the signed
link ACS fetches the audio by; the closed announcement plays the prompt, and reads the text
when ACS cannot play it."""

from __future__ import annotations

import io
import struct
import wave
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shared.domain.calls import CLOSED_ANNOUNCEMENT, Call, CallEvent, apply_event
from shared.domain.directory import parse_pool
from shared.domain.prompt_limits import MAX_PROMPT_BYTES
from shared.domain.prompts import MAX_PROMPT_SECONDS, check_name, check_prompt, prompt_id_for
from shared.errors import PayloadTooLarge, Problem, Unprocessable, UnsupportedMediaType
from shared.services.prompt_links import LINK_SECONDS, PromptLinks

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 24, 9, 0, tzinfo=UTC)


def wav(seconds: float = 1.0, *, rate: int = 16_000, channels: int = 1, width: int = 2) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(b"\x00" * int(rate * seconds) * channels * width)
    return buffer.getvalue()


def problems_of(caught: pytest.ExceptionInfo[Unprocessable]) -> list[str]:
    return [e.message for e in caught.value.errors]


def test_a_16_khz_mono_16_bit_pcm_wav_is_taken_with_its_length_and_size() -> None:
    audio = wav(2.5)
    checked = check_prompt(audio, "audio/wav")
    assert (checked.duration_ms, checked.size_bytes) == (2500, len(audio))
    assert check_prompt(audio, "audio/x-wav; charset=binary").duration_ms == 2500


def test_another_media_type_is_415() -> None:
    with pytest.raises(UnsupportedMediaType, match="audio/wav, not audio/mpeg"):
        check_prompt(wav(), "audio/mpeg")
    with pytest.raises(UnsupportedMediaType, match="no Content-Type"):
        check_prompt(wav(), "")


def test_a_file_over_the_size_limit_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        check_prompt(b"RIFF" + b"\x00" * MAX_PROMPT_BYTES, "audio/wav")


def test_a_prompt_longer_than_five_minutes_is_422() -> None:
    with pytest.raises(Unprocessable, match=f"at most {MAX_PROMPT_SECONDS} s"):
        check_prompt(wav(MAX_PROMPT_SECONDS + 1), "audio/wav")
    assert check_prompt(wav(MAX_PROMPT_SECONDS), "audio/wav").duration_ms == 300_000


def test_each_way_the_format_is_not_what_acs_plays_is_named() -> None:
    with pytest.raises(Unprocessable) as caught:
        check_prompt(wav(rate=44_100, channels=2, width=1), "audio/wav")
    assert problems_of(caught) == [
        "2 channels, not mono",
        "sample rate 44100 Hz, not 16000 Hz",
        "8-bit samples, not 16-bit",
    ]


def test_not_a_wav_at_all_is_422() -> None:
    with pytest.raises(Unprocessable) as caught:
        check_prompt(b"ID3\x04" + b"\x00" * 100, "audio/wav")
    assert problems_of(caught) == ["no RIFF/WAVE header: not a WAV file"]


def test_a_truncated_data_chunk_is_422() -> None:
    audio = wav(1.0)
    with pytest.raises(Unprocessable, match="the file is shorter"):
        check_prompt(audio[:-100], "audio/wav")


def test_a_non_pcm_encoding_is_422() -> None:
    audio = bytearray(wav(1.0))
    struct.pack_into("<H", audio, 20, 3)  # IEEE float instead of PCM
    with pytest.raises(Unprocessable) as caught:
        check_prompt(bytes(audio), "audio/wav")
    assert problems_of(caught) == ["encoding is format 0x0003, not PCM (0x0001)"]


def test_a_wav_without_samples_is_422() -> None:
    with pytest.raises(Unprocessable, match="no samples"):
        check_prompt(wav(0), "audio/wav")


def test_chunks_before_the_data_are_skipped_padding_included() -> None:
    audio = wav(1.0)
    fmt_end = 12 + 8 + 16
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd size, padded
    patched = audio[:fmt_end] + extra + audio[fmt_end:]
    assert check_prompt(patched, "audio/wav").duration_ms == 1000


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
@example(b"RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\xff")
@example(b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00")
@example(b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x01\x00" * 8 + b"data\xff\xff")
def test_any_bytes_are_taken_or_refused_with_a_problem(audio: bytes) -> None:
    for candidate in (audio, wav(0.01)[:44] + audio, wav(0.01)[: len(audio) % 400]):
        try:
            checked = check_prompt(candidate, "audio/wav")
        except Problem:
            continue
        assert 0 <= checked.duration_ms <= MAX_PROMPT_SECONDS * 1000


def test_a_name_is_required_and_bounded() -> None:
    assert check_name("  Christmas  ") == "Christmas"
    for bad in (None, "", "   ", "x" * 101, "tab\there"):
        with pytest.raises(Unprocessable):
            check_name(bad)


def test_the_same_audio_in_the_same_pool_is_the_same_prompt() -> None:
    audio = wav(1.0)
    assert prompt_id_for("support", audio) == prompt_id_for("support", audio)
    assert prompt_id_for("support", audio) != prompt_id_for("sales", audio)
    assert prompt_id_for("support", audio) != prompt_id_for("support", wav(2.0))


# ---------------------------------------------------------------------- the setting


def pool_with(action: dict[str, object], *, overflow: bool = False) -> list[str]:
    problems: list[str] = []
    data: dict[str, object] = {"id": "support", "numbers": [], "members": []}
    if overflow:
        data["overflow"] = {"maxQueueLength": 3, **action}
    else:
        data["closed"] = action
    pool = parse_pool(data, "pool", problems)
    assert pool is not None
    return problems


def test_an_action_names_a_prompt_beside_or_instead_of_its_text() -> None:
    problems: list[str] = []
    pool = parse_pool(
        {
            "id": "support",
            "numbers": [],
            "members": [],
            "hours": {"mon": [["08:00", "16:00"]]},
            "closed": {"then": "hangup", "prompt": "p0123456789abcdef", "announcement": "Closed."},
            "exceptions": [{"date": "2026-12-24", "prompt": "pfedcba9876543210"}],
        },
        "pool",
        problems,
    )
    assert problems == [] and pool is not None
    assert pool.prompts_in_use == {"p0123456789abcdef", "pfedcba9876543210"}
    assert pool.schedule.closed.to_json() == {
        "then": "hangup",
        "announcement": "Closed.",
        "prompt": "p0123456789abcdef",
    }


def test_a_prompt_that_is_not_a_prompt_id_is_named() -> None:
    assert pool_with({"then": "hangup", "prompt": "../x"}) == [
        "pool.closed.prompt must be the id of one of the pool's prompts"
    ]


def test_overflow_takes_no_prompt_as_it_takes_no_announcement() -> None:
    assert pool_with({"then": "hangup", "prompt": "p0123456789abcdef"}, overflow=True) == [
        "pool.overflow takes no announcement"
    ]


# ---------------------------------------------------------------------- the link ACS fetches


def test_a_prompt_link_is_valid_for_its_prompt_until_it_expires() -> None:
    links = PromptLinks("https://app.example", b"secret")
    url = links.url("support", "p0123456789abcdef", NOW)
    assert url.startswith("https://app.example/api/prompts/support/p0123456789abcdef/audio.wav?")
    query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
    expires, sig = query["expires"], query["sig"]
    assert links.valid("support", "p0123456789abcdef", expires, sig, NOW)
    later = NOW + timedelta(seconds=LINK_SECONDS + 1)
    assert not links.valid("support", "p0123456789abcdef", expires, sig, later)
    assert not links.valid("sales", "p0123456789abcdef", expires, sig, NOW)
    assert not links.valid("support", "p0123456789abcdef", str(int(expires) + 60), sig, NOW)
    assert not PromptLinks("https://app.example", b"other").valid(
        "support", "p0123456789abcdef", expires, sig, NOW
    )
    assert not links.valid("support", "p0123456789abcdef", "soon", "é", NOW)


# ---------------------------------------------------------------------- the call


def closed_call(**fields: object) -> Call:
    from shared.domain.calls import CallKind, Direction

    return Call(
        call_id="c1",
        direction=Direction.INBOUND,
        kind=CallKind.POOL,
        customer_number="+358401234567",
        our_number="+358101000300",
        arrived_at=NOW,
        pool_id="support",
        announce_then="hangup",
        announced="playing",
        **fields,  # type: ignore[arg-type]
    )


def play_event(kind: str) -> CallEvent:
    return CallEvent(id="e1", type=kind, at=NOW, operation_context=CLOSED_ANNOUNCEMENT)


def test_a_prompt_acs_cannot_play_falls_back_to_the_text() -> None:
    call = closed_call(announcement="We are closed.", announcement_prompt="p0123456789abcdef")
    after = apply_event(call, play_event("PlayFailed"))
    assert (after.announcement_prompt, after.announced) == (None, "")  # announced again: text
    assert apply_event(after, play_event("PlayCompleted")).announced == "played"


def test_a_prompt_without_text_that_fails_ends_the_announcement() -> None:
    call = closed_call(announcement_prompt="p0123456789abcdef")
    assert apply_event(call, play_event("PlayFailed")).announced == "played"
    assert apply_event(call, play_event("PlayCompleted")).announced == "played"


# ---------------------------------------------------------------------- the ACS emulator's check


def test_the_acs_emulator_plays_what_acs_plays_and_fails_the_rest_with_its_codes() -> None:
    from emulators.acs.media_files import DOWNLOAD_FAILED, INVALID_FORMAT, Fetched, playable

    assert playable(wav(1.0)) == ("wav", None)
    assert playable(b"ID3\x04" + b"\x00" * 32) == ("mp3", None)
    assert playable(wav(1.0, rate=8_000))[0] is None
    assert playable(b"not audio")[0] is None
    assert Fetched("u", 200, 10, "wav").result is None
    assert (
        Fetched("u", 200, 10, None, "not a PCM WAV").result
        == INVALID_FORMAT
        == (
            400,
            8535,
            "Action failed, file format is invalid.",
        )
    )
    assert Fetched("u", 404, 0, None).result == DOWNLOAD_FAILED
    assert Fetched("u", None, 0, None, "ConnectionError").result[1] == 8536  # type: ignore[index]
