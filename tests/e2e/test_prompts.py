"""Uploaded prompts (§7 2.3 3b "Create new prompt"; docs/pools.md "Prompts"): a supervisor
uploads a WAV for a pool, names it in the closed-hours action, and a caller hears it: ACS (the
emulator) downloads it through the signed link and plays it. Bad uploads are refused saying
what is wrong; agents get 403; a prompt ACS cannot fetch fails the play and the text is read."""

from __future__ import annotations

import io
import wave
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import BlobServiceClient

from emulators.acs.media import tone_wav
from tests.e2e.test_pools import _closed_all_week, put_pool, supervisor
from tests.fixtures.product import ANNA, CALLER, SUPPORT_NUMBER, Product, wait_for

pytestmark = pytest.mark.e2e
WAV = {"Content-Type": "audio/wav"}
CLOSED_TEXT = "We are closed. Please call again tomorrow."


def support(world: Product, **more: Any) -> dict[str, Any]:
    return put_pool(
        world,
        "support",
        name="Support",
        numbers=[SUPPORT_NUMBER],
        members=[{"agentId": ANNA.id, "skill": 5}],
        timeZone="Europe/Helsinki",
        **more,
    )


def upload(world: Product, audio: bytes, name: str = "Closed", **kw: Any) -> Any:
    return world.api(
        "POST",
        f"supervisor/pools/support/prompts?name={name}",
        token=kw.get("token") or supervisor(world),
        raw=audio,
        headers=kw.get("headers") or WAV,
    )


def silence(seconds: int, *, channels: int = 1, rate: int = 16_000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00" * rate * seconds * channels * 2)
    return buffer.getvalue()


def problem(reply: Any, status: int) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    return reply.json()  # type: ignore[no-any-return]


def plays_of(world: Product, server_call_id: str, count: int) -> list[dict[str, Any]] | None:
    """The call's plays once `count` of them have settled and the call has ended."""
    calls = [c for c in world.acs.state()["calls"] if c.get("serverCallId") == server_call_id]
    plays = [p for c in calls for p in c.get("plays", [])]
    ended = any(c.get("endedAt") for c in calls)
    settled = [p for p in plays if "fetched" not in p or "outcome" in p]
    return plays if ended and len(settled) >= count else None


def file_uri(play: dict[str, Any]) -> str:
    [source] = play["sources"]
    assert source["kind"] == "file", play
    return str(source["file"]["uri"])


def test_a_prompt_named_by_the_closed_hours_is_played_to_the_caller(world: Product) -> None:
    support(world)
    audio = tone_wav(1.5)
    reply = upload(world, audio, "Closed for the night")
    assert reply.status_code == 201, reply.text
    prompt = reply.json()
    assert (prompt["name"], prompt["durationMs"], prompt["sizeBytes"]) == (
        "Closed for the night",
        1500,
        len(audio),
    )
    assert prompt["inUse"] is False and prompt["uploadedBy"] == "ben@contoso.example"
    # The same audio again (here as a plain binary upload) is the same prompt.
    again = upload(world, audio, headers={"Content-Type": "application/octet-stream"})
    assert (again.status_code, again.json()["id"]) == (201, prompt["id"])

    support(
        world,
        hours=_closed_all_week(),
        closed={"then": "hangup", "prompt": prompt["id"], "announcement": CLOSED_TEXT},
    )
    listed = world.api("GET", "supervisor/pools/support/prompts", token=supervisor(world))
    assert listed.status_code == 200, listed.text
    assert [(p["id"], p["inUse"]) for p in listed.json()["prompts"]] == [(prompt["id"], True)]
    in_use = world.api(
        "DELETE", f"supervisor/pools/support/prompts/{prompt['id']}", token=supervisor(world)
    )
    assert "settings" in problem(in_use, 409)["detail"]

    placed = world.acs.place_call(CALLER, SUPPORT_NUMBER)
    plays = wait_for(lambda: plays_of(world, placed["serverCallId"], 1), what="the prompt to play")
    [play] = plays  # the prompt, not the text as well
    uri = file_uri(play)
    assert urlsplit(uri).path == f"/api/prompts/support/{prompt['id']}/audio.wav"
    assert play["outcome"] == "played"
    [fetched] = play["fetched"]
    assert (fetched["status"], fetched["bytes"], fetched["format"]) == (200, len(audio), "wav")
    assert world.ringing(ANNA.acs_id) is None

    # The link is ACS's alone: without its signature, or for another prompt, 403.
    bare = world.http.get(uri.split("?", 1)[0], timeout=30)
    assert "not valid" in problem(bare, 403)["detail"]
    forged = world.http.get(uri.replace(prompt["id"], "p" + "0" * 16), timeout=30)
    problem(forged, 403)


def test_a_prompt_acs_cannot_download_fails_the_play_and_the_text_is_read(
    world: Product,
) -> None:
    support(world)
    audio = tone_wav(0.5, frequency=330.0)
    prompt = upload(world, audio).json()
    support(
        world,
        hours=_closed_all_week(),
        closed={"then": "hangup", "prompt": prompt["id"], "announcement": CLOSED_TEXT},
    )
    # The audio is lost from Blob Storage behind the app's back.
    blobs = BlobServiceClient.from_connection_string(world.storage)
    blobs.get_blob_client("prompts", f"support/{prompt['id']}.wav").delete_blob()

    placed = world.acs.place_call(CALLER, SUPPORT_NUMBER)
    plays = wait_for(
        lambda: plays_of(world, placed["serverCallId"], 2), what="the failed play, then the text"
    )
    failed, text = plays
    assert failed["outcome"] == "failed" and failed["fetched"][0]["status"] == 404
    assert failed["result"] == {
        "code": 400,
        "subCode": 8536,
        "message": "Action failed, file could not be downloaded.",
    }
    assert text["sources"][0]["kind"] == "text" and CLOSED_TEXT in str(text["sources"])


def test_uploads_that_are_not_what_acs_plays_are_refused_saying_why(world: Product) -> None:
    support(world)
    plain = upload(world, b"hello", headers={"Content-Type": "text/plain"})
    assert "audio/wav" in problem(plain, 415)["detail"]

    stereo = problem(upload(world, silence(1, channels=2, rate=44_100)), 422)
    assert [e["message"] for e in stereo["errors"]] == [
        "2 channels, not mono",
        "sample rate 44100 Hz, not 16000 Hz",
    ]
    assert "RIFF" in problem(upload(world, b"ID3" + b"\x00" * 64), 422)["detail"]
    too_long = problem(upload(world, silence(301)), 422)
    assert "at most 300 s" in too_long["detail"]
    too_big = upload(world, b"RIFF" + b"\x00" * (10 * 1024 * 1024))
    problem(too_big, 413)
    nameless = world.api(
        "POST",
        "supervisor/pools/support/prompts",
        token=supervisor(world),
        raw=tone_wav(0.2),
        headers=WAV,
    )
    assert problem(nameless, 422)["errors"][0]["field"] == "name"
    unknown = world.api(
        "POST",
        "supervisor/pools/nope/prompts?name=x",
        token=supervisor(world),
        raw=b"",
        headers=WAV,
    )
    problem(unknown, 404)
    listed = world.api("GET", "supervisor/pools/support/prompts", token=supervisor(world))
    assert listed.json()["prompts"] == []  # nothing refused was stored

    # A setting naming a prompt the pool does not have is refused with the rest of it.
    reply = world.api(
        "PUT",
        "supervisor/pools/support/settings",
        token=supervisor(world),
        json_body={
            "numbers": [SUPPORT_NUMBER],
            "members": [ANNA.id],
            "closed": {"then": "hangup", "prompt": "p" + "1" * 16},
        },
    )
    assert "no prompt" in problem(reply, 422)["detail"]


def test_agents_may_not_upload_list_or_delete_prompts(world: Product) -> None:
    support(world)
    agent = world.token(ANNA)
    problem(upload(world, tone_wav(0.2), token=agent), 403)
    problem(world.api("GET", "supervisor/pools/support/prompts", token=agent), 403)
    prompt = upload(world, tone_wav(0.2)).json()
    gone = world.api("DELETE", f"supervisor/pools/support/prompts/{prompt['id']}", token=agent)
    problem(gone, 403)
    deleted = world.api(
        "DELETE", f"supervisor/pools/support/prompts/{prompt['id']}", token=supervisor(world)
    )
    assert deleted.status_code == 204, deleted.text
    again = world.api(
        "DELETE", f"supervisor/pools/support/prompts/{prompt['id']}", token=supervisor(world)
    )
    problem(again, 404)
