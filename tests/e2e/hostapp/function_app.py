"""A small Functions app for the local host's own tests: it records every invocation to files."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import azure.functions as func


def _settings() -> tuple[Path, int]:
    # Like the real app's config: check every setting at import, report all problems at once.
    problems = []
    record_dir = os.environ.get("HOSTAPP_RECORD_DIR", "")
    if not record_dir:
        problems.append("HOSTAPP_RECORD_DIR is missing")
    limit = os.environ.get("HOSTAPP_LIMIT", "")
    if not limit.isdigit():
        problems.append(f"HOSTAPP_LIMIT must be an integer, got {limit!r}")
    if problems:
        raise ValueError("Invalid settings: " + "; ".join(problems))
    return Path(record_dir), int(limit)


RECORD_DIR, LIMIT = _settings()
_lock = threading.Lock()


def record(function: str, **data: Any) -> None:
    """Append one JSON line to RECORD_DIR/<function>.jsonl (what the tests read)."""
    line = json.dumps({"at": time.time(), **data}, default=str)
    with _lock, (RECORD_DIR / f"{function}.jsonl").open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def _json(body: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="secure/{id:int}/{label?}", methods=["GET"])
def secure(req: func.HttpRequest) -> func.HttpResponse:
    seen = {
        "method": req.method,
        "url": req.url,
        "route_params": dict(req.route_params),
        "params": dict(req.params),
        "greeting": os.environ.get("HOSTAPP_GREETING"),
        "limit": LIMIT,
    }
    record("secure", **seen)
    return _json(seen)


@app.route(route="public/{*rest}", methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def public(req: func.HttpRequest) -> func.HttpResponse:
    record("public", method=req.method)
    body = {
        "rest": req.route_params.get("rest"),
        "body": req.get_body().decode("utf-8"),
        "content_type": req.headers.get("content-type"),
    }
    status = 201 if req.method == "POST" else 200
    return func.HttpResponse(
        json.dumps(body),
        status_code=status,
        mimetype="application/json",
        headers={"x-hostapp": "yes"},
    )


@app.route(route="admin-only", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin ok")


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("boom on purpose")


@app.route(route="whoami", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def whoami(req: func.HttpRequest, context: func.Context) -> str:
    return f"{context.function_name} {context.invocation_id}"


@app.timer_trigger(schedule="%TICK_SCHEDULE%", arg_name="timer")
def tick(timer: func.TimerRequest) -> None:
    record("tick", past_due=timer.past_due, type=type(timer).__name__)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer")
def yearly(timer: func.TimerRequest) -> None:
    record("yearly", past_due=timer.past_due, schedule_status=timer.schedule_status)


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=True, use_monitor=False)
def on_start(timer: func.TimerRequest) -> None:
    record("on_start", past_due=timer.past_due)


@app.queue_trigger(arg_name="msg", queue_name="%OK_QUEUE%", connection="AzureWebJobsStorage")
def queue_ok(msg: func.QueueMessage) -> None:
    record(
        "queue_ok",
        id=msg.id,
        body=msg.get_body().decode("utf-8"),
        dequeue_count=msg.dequeue_count,
        insertion_time=msg.insertion_time,
        type=type(msg).__name__,
    )


@app.queue_trigger(arg_name="msg", queue_name="%FAIL_QUEUE%", connection="AzureWebJobsStorage")
def queue_fail(msg: func.QueueMessage) -> None:
    record("queue_fail", body=msg.get_body().decode("utf-8"), dequeue_count=msg.dequeue_count)
    logging.warning("queue_fail refuses message %s (attempt %s)", msg.id, msg.dequeue_count)
    raise RuntimeError("this handler always fails")
