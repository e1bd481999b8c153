"""Metering, as pure steps: what a task's container ran, turned into charges exactly once.

A task's `Meter` lives in its row.  `meter_from` is the moment up to which its current
run has been charged; None when nothing accrues (not running, or stopped by the
platform).  Every step returns the new meter and the charges to append to the ledger;
the store writes both in one transaction, guarded by the meter's `seq`, so a step
replayed on a stale meter writes nothing.

Times are the API's clock.  The engine's start and end of a run (as the agent reports
them, shifted by the agent's clock offset) bound what is billed: setup before the start
and the time after the exit are free, and a charge made while the end was still on its
way is given back when the end arrives.  Milliseconds are taken on a whole-millisecond
grid and each run's amount is computed from its running total, so a run split into
many charges costs exactly what it would in one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from megamind.money import cost_of

# An executor that comes back within this long, its engine vouching that the same run
# went on, is billed for the gap (an agent or API restart); one silent for longer is
# billed again only from when it is seen again.
SILENCE_GRACE_S = 60.0


@dataclass(frozen=True)
class Meter:
    price_micro: int = 0  # per hour, fixed when the task was placed
    run_key: float | None = None  # the engine's start of the run being metered, on the agent's clock
    run_started: float | None = None  # the run's start on the API's clock: nothing before it is billed
    meter_from: float | None = None
    run_ms: int = 0  # charged for the current run
    run_micro: int = 0
    seq: int = 0  # charges the task has had
    billed_ms: int = 0  # charged for every run of the task
    cost_micro: int = 0
    # Silences of the executor longer than the grace during this run, (from, to): charging
    # stopped at each start and went on from its end; a silence is never billed.
    unseen: tuple[tuple[float, float], ...] = ()
    # Not written back: the moment the task was placed, before which no run is billed.
    placed_at: float | None = None


@dataclass(frozen=True)
class Charge:
    seq: int
    start: float
    end: float
    ms: int  # negative: time charged past the run's real end, given back
    micro: int


Step = tuple[Meter, tuple[Charge, ...]]


def _ms(moment: float) -> int:
    return round(moment * 1000)


def _charge(meter: Meter, start: float, end: float, ms: int | None = None) -> Step:
    """Charge ``start``..``end`` of the current run, or ``ms`` for that period (a refund
    when negative)."""
    # Never more given back than the run was charged.
    ms = max(_ms(end) - _ms(start) if ms is None else ms, -meter.run_ms)
    if ms == 0:
        return meter, ()
    run_ms = meter.run_ms + ms
    run_micro = cost_of(meter.price_micro, run_ms)
    micro = run_micro - meter.run_micro
    charge = Charge(meter.seq + 1, start, end, ms, micro)
    return replace(
        meter, run_ms=run_ms, run_micro=run_micro, seq=charge.seq,
        billed_ms=meter.billed_ms + ms, cost_micro=meter.cost_micro + micro,
    ), (charge,)


def running(meter: Meter, run_key: float | None, started: float | None, now: float) -> Step:
    """The container was seen running: a new run opens, or the one under way goes on."""
    if run_key is not None and run_key == meter.run_key:
        return meter, ()  # the run the meter knows: under way, or over already
    if meter.meter_from is not None and (run_key is None or meter.run_key is None):
        # The run under way, told without the engine's start (or first with it).
        return (replace(meter, run_key=run_key) if run_key is not None else meter), ()
    meter, charges = ended(meter, None, now)
    start = now if started is None else min(started, now)
    if meter.placed_at is not None:
        start = max(start, min(meter.placed_at, now))  # an engine clock that runs early bills nothing extra
    return replace(meter, run_key=run_key, run_started=start, meter_from=start, run_ms=0, run_micro=0,
                   unseen=()), charges


def ended(meter: Meter, finished: float | None, now: float, started: float | None = None) -> Step:
    """The run is over (at ``finished`` by the engine's word, or unknown: now).  An end that
    gives the engine's start of a run first heard of without it moves the run's start there."""
    if meter.meter_from is None:
        return meter, ()
    if started is not None and meter.run_key is None and meter.run_started is not None and not meter.unseen:
        floor = meter.run_started if meter.placed_at is None else min(meter.placed_at, meter.run_started)
        meter = replace(meter, run_started=max(min(started, meter.run_started), floor))
    end = now if finished is None else min(finished, now)
    if meter.run_started is not None:
        end = max(end, meter.run_started)
    # Billed is exactly the time it was seen running before its end: what is owed beyond
    # the charges so far, or given back when a charge went past the end.
    owed = _seen_ms(meter, end) - meter.run_ms
    meter, charges = _charge(meter, meter.meter_from, end, owed)
    return replace(meter, meter_from=None, unseen=()), charges


def _seen_ms(meter: Meter, end: float) -> int:
    """Milliseconds of the run from its start to ``end`` outside its silences."""
    seen = _ms(end) - _ms(meter.run_started)
    for silent_from, silent_to in meter.unseen:
        seen -= max(0, min(_ms(end), _ms(silent_to)) - _ms(silent_from))
    return max(seen, 0)


def tick(meter: Meter, now: float) -> Step:
    """Charge the run under way up to now."""
    if meter.meter_from is None or now <= meter.meter_from:
        return meter, ()
    meter, charges = _charge(meter, meter.meter_from, now)
    return replace(meter, meter_from=now), charges


def halt(meter: Meter, now: float) -> Step:
    """The platform stops the task: charged up to now, and nothing after."""
    meter, charges = tick(meter, now)
    return replace(meter, meter_from=None), charges


def seen_again(meter: Meter, now: float, last_seen: float | None = None, grace_s: float = SILENCE_GRACE_S) -> Meter:
    """The executor is back after a silence that began at ``last_seen`` (its last sign of
    life the API recorded) or at the last charge, whichever is later: a silence longer than
    the grace is not billed."""
    if meter.meter_from is None:
        return meter
    silent_since = meter.meter_from if last_seen is None else max(meter.meter_from, last_seen)
    if now - silent_since > grace_s:
        return replace(meter, meter_from=now, unseen=(*meter.unseen, (meter.meter_from, now)))
    return meter
