"""Example Megamind task in Python.

Reads the customer's params from MEGAMIND_PARAMS, does a little visible work
and exits. What it shows:

* params: a JSON object is read as options; anything else (plain text, or
  JSON that is not an object) is taken as the raw string to work on;
* stdout is the log the customer reads first (gettasklogs gives its last 20
  lines), so user-facing messages and errors go there, each line flushed at once;
* progress: a stdout line MEGAMIND_PROGRESS=<0-100> after each step sets the
  task's progress;
* stderr carries diagnostics; it is kept as its own stream (logs --stderr);
* inputs: files the customer gave are listed from /megamind/input/;
* results: the final digest is written to /megamind/output/result.json, which
  the customer downloads with the task's results;
* SIGTERM (sent when the task is deleted or restarted) stops the work after
  the current step and the program exits 0;
* exit codes: 0 success, 2 bad params, 1 unexpected failure, or the code
  asked for with "exit_code" (to try out the platform's error state).

Options in a JSON object (all optional):

    {"steps": 5, "delay": 1.0, "text": "megamind", "exit_code": 0}
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_PARAMS = 2

MAX_STEPS = 1000
MAX_DELAY = 60.0
INPUT_DIR = Path("/megamind/input")
OUTPUT_DIR = Path("/megamind/output")


class BadParams(ValueError):
    """The params string cannot be used; the message says why."""


@dataclass(frozen=True)
class Options:
    steps: int = 5
    delay: float = 1.0
    text: str = "megamind"
    exit_code: int = 0


def out(line: str) -> None:
    """A line for the task log (stdout), flushed at once."""
    print(line, flush=True)


def diag(line: str) -> None:
    """A diagnostic line for stderr (kept as the task's stderr stream)."""
    print(f"[python-example] {line}", file=sys.stderr, flush=True)


def parse_params(raw: str) -> Options:
    """Turn the MEGAMIND_PARAMS string into Options.

    A JSON object gives options; any other string is used as the text.
    """
    if not raw.strip():
        return Options()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return Options(text=raw)
    if not isinstance(value, dict):
        return Options(text=raw)

    unknown = sorted(set(value) - {"steps", "delay", "text", "exit_code"})
    if unknown:
        raise BadParams(
            f"unknown option(s) {', '.join(unknown)}; "
            "known: steps, delay, text, exit_code"
        )

    steps = value.get("steps", Options.steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise BadParams(f"'steps' must be a whole number from 1 to {MAX_STEPS}, got {steps!r}")

    delay = value.get("delay", Options.delay)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_DELAY:
        raise BadParams(f"'delay' must be a number of seconds from 0 to {MAX_DELAY:g}, got {delay!r}")

    text = value.get("text", Options.text)
    if not isinstance(text, str):
        raise BadParams(f"'text' must be a string, got {text!r}")

    exit_code = value.get("exit_code", Options.exit_code)
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
        raise BadParams(f"'exit_code' must be a whole number from 0 to 255, got {exit_code!r}")

    return Options(steps=steps, delay=float(delay), text=text, exit_code=exit_code)


class StopFlag:
    """Set by SIGTERM/SIGINT; the work loop checks it between steps."""

    def __init__(self) -> None:
        self.signal_name = ""

    def __bool__(self) -> bool:
        return bool(self.signal_name)

    def handle(self, signum: int, _frame: object) -> None:
        self.signal_name = signal.Signals(signum).name


def pause(seconds: float, stop: StopFlag) -> None:
    """Sleep, waking up early (within 0.1 s) when a stop was asked for."""
    deadline = time.monotonic() + seconds
    while not stop:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.1))


def run(opts: Options, stop: StopFlag) -> int:
    out(f"python-example: {opts.steps} step(s), text {opts.text!r}")
    inputs = sorted(p.name for p in INPUT_DIR.iterdir()) if INPUT_DIR.is_dir() else []
    out(f"inputs: {', '.join(inputs) if inputs else 'none'}")
    digest = opts.text.encode()
    for step in range(1, opts.steps + 1):
        if stop:
            out(f"stopping on {stop.signal_name} after {step - 1}/{opts.steps} step(s)")
            return EXIT_OK
        digest = hashlib.sha256(digest + str(step).encode()).digest()
        out(f"step {step}/{opts.steps}: {digest.hex()[:16]}")
        out(f"MEGAMIND_PROGRESS={100 * step / opts.steps:g}")
        if step < opts.steps:
            pause(opts.delay, stop)
    out(f"result: {digest.hex()}")
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "result.json").write_text(json.dumps({"text": opts.text, "steps": opts.steps,
                                                        "digest": digest.hex()}) + "\n")
    if opts.exit_code:
        out(f"exiting with code {opts.exit_code} as asked by 'exit_code'")
    else:
        out("done")
    return opts.exit_code


def main() -> int:
    stop = StopFlag()
    signal.signal(signal.SIGTERM, stop.handle)
    signal.signal(signal.SIGINT, stop.handle)

    raw = os.environ.get("MEGAMIND_PARAMS", "")
    diag(f"task {os.environ.get('MEGAMIND_TASK_ID', '<none>')}, "
         f"params {len(raw)} byte(s), python {sys.version.split()[0]}, pid {os.getpid()}")
    try:
        opts = parse_params(raw)
    except BadParams as exc:
        # On stdout too: that is the log the customer can read.
        out(f"error: bad MEGAMIND_PARAMS: {exc}")
        diag(f"bad params: {exc}")
        return EXIT_BAD_PARAMS
    diag(f"options {opts}")

    try:
        return run(opts, stop)
    except Exception as exc:  # last resort: say what broke, exit non-zero
        out(f"error: {type(exc).__name__}: {exc}")
        diag(f"unexpected failure: {exc!r}")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
