"""What schemathesis is told beyond the OpenAPI document (its ``hooks``, for test_schemathesis.py).

``before_call`` gives addtask and estimate files that exist: `inputs` names files of the
account, and the generator cannot know their ids. The test uploads a few and passes their
ids in MEGAMIND_FUZZ_FILES; any generated list of ids is replaced by as many real ones
(schemathesis then judges the request as sent). In the stateful phase it also leaves out
of addtask what picks an executor (hwid, requirements, limits): generated, they seldom fit
the one registered, and a task must be created for the links from addtask to be followed
(a created task is found, a deleted one is gone).

It also reads a live task's lines without follow: followed, the answer would stay open
until the task ends (an hour at most), and the tasks of the run wait in the queue.

``after_call`` registers a new executor whenever the run removed one, and clears the
spend limit whenever the run set one.

``filter_failure`` lets a schema-valid request be refused (ST202) only where the refusal
does not depend on the request's form, which JSON Schema cannot express:

- the platform's state: no registered executor could ever hold the task (code 20), the
  account cannot pay or is past its hourly limit (402);
- an opaque cursor the generator invented (the server gives cursors; the spec can only
  say what characters they use), checked by decoding it as the server does;
- a time range whose `from` is after its `to` (one field against another);
- one port in two items of addtask's `ports` (JSON Schema compares whole items);

and lets a request the generator meant as schema-violating be accepted (ST201) only where
what it sent was valid: an upload form whose invalid part could not be put into the form.

Every other ST201 and ST202 is a disagreement between the spec and the server, and fails
the run.

One check of our own, ``error_is_code_and_message``: every error answer is exactly
``{"code", "message"}`` with a non-zero integer code and a message (the spec's Error allows
more properties than that).
"""

from __future__ import annotations

import email
import json
import os
import urllib.parse

import requests
import schemathesis
from marshmallow import ValidationError
from schemathesis.core.failures import AcceptedNegativeData
from schemathesis.generation.meta import TestPhase
from schemathesis.openapi.checks import RejectedPositiveData

from megamind.api.historyschemas import TimeBound
from megamind.api.output import FOLLOW_VALUES
from megamind.errors import ErrorCode, MegamindError
from megamind.protocol import REGISTER_PATH
from megamind.states import TaskState
from megamind.store.history import decode_cursor
from megamind.testing import SAMPLE_HARDWARE

KEY_VARIABLE = "MEGAMIND_FUZZ_KEY"  # the run's api-key
FILES_VARIABLE = "MEGAMIND_FUZZ_FILES"
DROPPED_VARIABLE = "MEGAMIND_FUZZ_DROPPED"  # where each dropped failure is written, one JSON line each
UPLOAD_PATH = "/api/v1/files"
ADDTASK_PATH = "/api/v1/addtask"
LINES_PATH = "/api/v1/task/{taskid}/logs"
FOLLOWING = {value for value, follows in FOLLOW_VALUES.items() if follows}
ENDED = {TaskState.STOPPED, TaskState.ERROR}
EXECUTOR_PATH = "/api/v1/executors/{hwid}"
ACCOUNT_PATH = "/api/v1/account"
REGISTRATION = {"hardware": SAMPLE_HARDWARE, "cost": 0.5}  # what test_schemathesis.py registers
# What picks an executor: generated, it seldom names one that could ever hold the task.
PLACEMENT_FIELDS = ("hwid", "requirements", "limits")
BODIES_WITH_INPUTS = {"/api/v1/addtask", "/api/v1/estimate"}
STATE_CODES = {ErrorCode.UNSATISFIABLE, ErrorCode.INSUFFICIENT_FUNDS, ErrorCode.SPEND_LIMIT_REACHED}


@schemathesis.check
def error_is_code_and_message(ctx, response, case) -> None:
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.startswith("application/json"), f"an error answered as {content_type!r}"
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"code", "message"}, f"not {{code, message}}: {body!r}"
    code = body["code"]
    assert isinstance(code, int) and not isinstance(code, bool) and code != 0, f"code {code!r}"
    assert isinstance(body["message"], str) and body["message"].strip(), "an empty message"


@schemathesis.hook
def before_call(context, case, kwargs) -> None:
    files = [f for f in os.environ.get(FILES_VARIABLE, "").split(",") if f]
    body = case.body
    if (case.operation.path in BODIES_WITH_INPUTS and isinstance(body, dict)
            and isinstance(body.get("inputs"), list) and body["inputs"]
            and all(isinstance(i, str) for i in body["inputs"])):
        body["inputs"] = files[:len(body["inputs"])]
    query = case.query
    if (case.operation.path == LINES_PATH and isinstance(query, dict)
            and str(query.get("follow")).lower() in FOLLOWING and not _ends_at_once(case)):
        query["follow"] = "0"
    meta = case.meta
    if (case.operation.path == ADDTASK_PATH and isinstance(body, dict) and meta is not None
            and meta.phase.name == TestPhase.STATEFUL and meta.generation.mode.is_positive):
        for field in PLACEMENT_FIELDS:
            body.pop(field, None)


def _ends_at_once(case) -> bool:
    """Whether a followed answer for the task would end at once: the task ended, or is not there."""
    taskid = (case.path_parameters or {}).get("taskid")
    if not isinstance(taskid, str) or not taskid or "/" in taskid:
        return True
    url = case.operation.base_url.rstrip("/") + "/api/v1/task/" + urllib.parse.quote(taskid, safe="")
    answer = requests.get(url, headers={"api-key": os.environ[KEY_VARIABLE]}, timeout=30)
    return answer.status_code != 200 or answer.json()["state"] in ENDED


@schemathesis.hook
def after_call(context, case, response) -> None:
    """What the run changed that would refuse every later addtask is put back: an executor it
    removed is registered anew, an hourly spend limit it set (0 refuses all) is cleared."""
    if response.status_code != 200 or response.request.method not in ("DELETE", "PATCH"):
        return
    sent = response.request
    base, headers = sent.url[:sent.url.index("/api/")], {"api-key": sent.headers["api-key"]}
    if case.operation.path == EXECUTOR_PATH and sent.method == "DELETE":
        requests.post(base + REGISTER_PATH, json=REGISTRATION, headers=headers, timeout=30).raise_for_status()
    elif case.operation.path == ACCOUNT_PATH and sent.method == "PATCH":
        requests.patch(base + ACCOUNT_PATH, json={"spend_limit_per_hour": None}, headers=headers,
                       timeout=30).raise_for_status()


@schemathesis.hook
def filter_failure(context, failure, case, response) -> bool:
    """False drops the failure: a refusal no spec could have predicted from the request alone."""
    reason = _excuse(failure, case, response)
    if reason and (log := os.environ.get(DROPPED_VARIABLE)):
        with open(log, "a") as out:
            out.write(json.dumps({"reason": reason, "operation": case.operation.label,
                                  "status": response.status_code, "generated": repr(case.body)[:200]}) + "\n")
    return reason is None


def _excuse(failure, case, response) -> str | None:
    if isinstance(failure, AcceptedNegativeData):
        return _valid_as_sent(case, response)
    if not isinstance(failure, RejectedPositiveData):
        return None
    try:
        code = json.loads(response.content)["code"]
    except (ValueError, KeyError, TypeError):
        return None
    if code in STATE_CODES:
        return ErrorCode(code).name.lower()
    query = case.query or {}
    if code == ErrorCode.VALIDATION_FAILED:
        if _invented_cursor(query):
            return "invented cursor"
        if _reversed_range(query):
            return "from after to"
        if _repeated_port(case.body):
            return "a port twice"
    return None


def _repeated_port(body) -> bool:
    """The same container port, or host port, in two items of different form ({"container": 80}
    and 80): uniqueItems compares whole items, the server the ports they name."""
    ports = body.get("ports") if isinstance(body, dict) else None
    if not isinstance(ports, list):
        return False
    objects = [p for p in ports if isinstance(p, dict)]
    containers = [p for p in ports if isinstance(p, (int, float))] + [p.get("container") for p in objects]
    hosts = [p.get("host") for p in objects if p.get("host")]
    return len(set(containers)) < len(containers) or len(set(hosts)) < len(hosts)


def _valid_as_sent(case, response) -> str | None:
    """A form whose invalid part the generator made but never sent (a multipart form holds
    strings and files, not nulls or objects): one part, `file`, is a valid upload whatever
    the generator thought of it."""
    if case.operation.path != UPLOAD_PATH:
        return None
    content_type = response.request.headers.get("Content-Type", "")
    body = response.request.body
    if not content_type.startswith("multipart/form-data") or not isinstance(body, bytes):
        return None
    message = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts = message.get_payload() if message.is_multipart() else []
    if [part.get_param("name", header="content-disposition") for part in parts] == ["file"]:
        return "a form of one part, file, as sent"
    return None


def _invented_cursor(query: dict) -> bool:
    cursor = query.get("cursor")
    if not isinstance(cursor, str):
        return False
    try:
        decode_cursor(cursor)
    except MegamindError:
        return True
    return False


def _reversed_range(query: dict) -> bool:
    if not isinstance(query.get("from"), str) or not isinstance(query.get("to"), str):
        return False
    try:
        start = TimeBound().deserialize(query["from"])
        end = TimeBound(end_of_day=True).deserialize(query["to"])
    except ValidationError:
        return False
    return start > end
