"""The pure meter (megamind/metering.py) and money as micro-units (megamind/money.py).

The property tests drive one task's meter through random histories (runs reported,
resent, ended by the engine, ticked, halted, executors lost and found again, restarts)
and compare what it charged with a plain model of the time its container was seen to run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from megamind import metering
from megamind.metering import SILENCE_GRACE_S, Charge, Meter
from megamind.money import (
    MICRO,
    cost_of,
    format_money,
    from_micro,
    per_minute,
    share,
    to_micro,
)

GRACE_MS = round(SILENCE_GRACE_S * 1000)
EPOCH_MS = 1_700_000_000_000  # times near today's, so float seconds carry real rounding


def s(ms: int) -> float:
    """Milliseconds on the test's clock as the meter's seconds."""
    return ms / 1000


# --- the model ------------------------------------------------------------------------


@dataclass
class Run:
    start: int  # the engine's start, ms
    end: int | None = None  # the engine's finish or the platform's halt, ms
    charges: list[Charge] = field(default_factory=list)


@dataclass
class World:
    """One task on one executor, and what the platform was told, in time order."""

    price: int
    t: int = EPOCH_MS
    meter: Meter = None  # type: ignore[assignment]
    seen: bool = True
    lost_at: int | None = None
    runs: list[Run] = field(default_factory=list)
    running: bool = False  # a container runs and the platform has not been told otherwise
    end_pending: int | None = None  # the engine's finish, not yet reported
    last_end: int | None = None  # the finish last reported (for resends)
    long_silences: list[tuple[int, int]] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.meter = Meter(price_micro=self.price)

    def apply(self, move) -> None:
        """One step, checked to be a no-op when replayed on the meter it produced."""
        after, charges = move(self.meter)
        assert move(after) == (after, ()), "replaying a step changed the meter again"
        if charges:
            assert self.runs, "a charge before any run"
            self.runs[-1].charges.extend(charges)
            self.charges.extend(charges)
        self.meter = after

    def visible_ms(self, run: Run) -> int:
        """A run's time as the model bills it: its engine start to its end, less every
        silence longer than the grace."""
        assert run.end is not None
        hidden = sum(max(0, min(run.end, back) - max(run.start, lost)) for lost, back in self.long_silences)
        return run.end - run.start - hidden


ACTIONS = ("start", "resend_running", "late_running", "tick", "finish", "deliver_end", "resend_end", "halt",
           "lose", "back_soon", "back_late", "wait")


def play(world: World, action: str, x: int) -> None:
    """Apply one action if it makes sense now; otherwise nothing happens."""
    if action == "start" and world.seen and not world.running and world.end_pending is None:
        world.t += x  # setup (pulling, creating): never billed
        started = world.t
        world.t += x % 5_000  # the report travels
        world.runs.append(Run(started))
        world.running = True
        world.apply(lambda m: metering.running(m, s(started), s(started), s(world.t)))
    elif action == "resend_running" and world.seen and world.running:
        run = world.runs[-1]
        world.t += x % 10_000
        world.apply(lambda m: metering.running(m, s(run.start), s(run.start), s(world.t)))
    elif action == "late_running" and world.seen and world.runs and not world.running:
        # A copy of the last run's running report, arriving after its end or halt.
        run = world.runs[-1]
        world.t += x % 10_000
        world.apply(lambda m: metering.running(m, s(run.start), s(run.start), s(world.t)))
    elif action == "tick":
        world.t += x
        if world.seen:  # the ledger ticks only executors it sees
            world.apply(lambda m: metering.tick(m, s(world.t)))
    elif action == "finish" and world.running:
        world.t += x
        world.running = False
        world.end_pending = world.runs[-1].end = world.t
    elif action == "deliver_end" and world.seen and world.end_pending is not None:
        finished, world.end_pending = world.end_pending, None
        world.t += x % 5_000
        world.last_end = finished
        world.apply(lambda m: metering.ended(m, s(finished), s(world.t)))
    elif action == "resend_end" and world.seen and world.last_end is not None and not world.running \
            and world.end_pending is None:
        finished = world.last_end
        world.t += x % 5_000
        world.apply(lambda m: metering.ended(m, s(finished), s(world.t)))
    elif action == "halt" and world.seen and world.running:
        world.t += x
        world.running = False
        world.runs[-1].end = world.t
        world.apply(lambda m: metering.halt(m, s(world.t)))
    elif action == "lose" and world.seen:
        world.t += x % 5_000
        world.seen, world.lost_at = False, world.t
        world.apply(lambda m: metering.tick(m, s(world.t)))  # Ledger.lose_sight
    elif action in ("back_soon", "back_late") and not world.seen:
        world.t += GRACE_MS + 1 + x if action == "back_late" else x % GRACE_MS
        if world.t - world.lost_at == GRACE_MS:
            world.t += 1  # exactly at the grace, float seconds could fall either side
        if world.t - world.lost_at > GRACE_MS:  # time may have passed in the silence too
            world.long_silences.append((world.lost_at, world.t))
        world.seen = True
        world.apply(lambda m: (metering.seen_again(m, s(world.t)), ()))
    elif action == "wait":
        world.t += x


def conclude(world: World) -> None:
    """Bring the history to a close: the executor back, the last run ended and reported."""
    if not world.seen:
        play(world, "back_soon", 1)
    if world.running:
        play(world, "halt", 1)
    if world.end_pending is not None:
        play(world, "deliver_end", 1)


histories = st.lists(st.tuples(st.sampled_from(ACTIONS), st.integers(0, 200_000)), max_size=60)
prices = st.one_of(st.sampled_from([0, 1, 499_999, 3_600_000_000, 500_000]), st.integers(0, 10**12))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(price=prices, history=histories)
# Histories that once went wrong, kept whatever the random search finds.
@example(price=0, history=[("start", 0), ("finish", 0), ("lose", 1), ("back_late", 0)])
@example(price=0, history=[("start", 0), ("lose", 1), ("finish", 0), ("back_late", 0), ("lose", 0),
                           ("back_late", 0)])
@example(price=3_600_000_000, history=[("start", 0), ("tick", 30_000), ("lose", 0), ("finish", 10_000),
                                       ("back_late", 100_000), ("lose", 1_000), ("back_late", 100_000)])
def test_the_meter_bills_exactly_the_time_each_run_was_seen_running(price, history):
    world = World(price)
    for action, x in history:
        play(world, action, x)
    conclude(world)

    assert [c.seq for c in world.charges] == list(range(1, len(world.charges) + 1))
    assert all(c.ms != 0 for c in world.charges)
    for run in world.runs:
        billed = sum(c.ms for c in run.charges)
        assert billed == world.visible_ms(run), (run, world.long_silences)
        # However many charges a run was split into, it costs what it would in one.
        assert sum(c.micro for c in run.charges) == cost_of(price, billed)
    assert world.meter.billed_ms == sum(world.visible_ms(r) for r in world.runs)
    assert world.meter.cost_micro == sum(cost_of(price, world.visible_ms(r)) for r in world.runs)
    assert world.meter.seq == len(world.charges)
    assert world.meter.meter_from is None


@settings(max_examples=300, deadline=None)
@given(price=prices, setup=st.integers(0, 10**7), run=st.integers(1, 10**7), late=st.integers(1, 10**6),
       ticks=st.lists(st.integers(1, 10**6), max_size=8))
def test_setup_time_and_time_after_the_engines_finish_are_never_billed(price, setup, run, late, ticks):
    """Ticks that run past the finish (its report still on its way) are given back."""
    placed = EPOCH_MS
    started = placed + setup
    finished = started + run
    meter, charges = metering.running(Meter(price), s(started), s(started), s(started + 10))
    all_charges = list(charges)
    now = started + 10
    for step in ticks:
        now += step
        meter, charges = metering.tick(meter, s(now))
        all_charges += charges
    now = max(now, finished) + late
    meter, charges = metering.ended(meter, s(finished), s(now))
    all_charges += charges
    assert sum(c.ms for c in all_charges) == meter.billed_ms == run
    assert meter.cost_micro == sum(c.micro for c in all_charges) == cost_of(price, run)
    assert all(c.start >= s(started) for c in all_charges)


# --- plain examples -------------------------------------------------------------------


def test_a_three_second_run_at_3600_an_hour_costs_exactly_3():
    price = to_micro(3600)
    meter, first = metering.running(Meter(price), 1000.0, 1000.0, 1000.2)
    meter, last = metering.ended(meter, 1003.0, 1003.5)
    assert first == ()
    assert last == (Charge(1, 1000.0, 1003.0, 3000, 3_000_000),)
    assert (meter.billed_ms, meter.cost_micro, meter.meter_from) == (3000, 3_000_000, None)


def test_a_run_split_into_many_charges_costs_what_one_charge_would():
    price = to_micro("0.7")  # 0.7 an hour: a millisecond is worth 0.000194... micro-units
    meter, _ = metering.running(Meter(price), 0.0, 0.0, 0.0)
    charges: list[Charge] = []
    for ms in range(1, 1001):
        meter, made = metering.tick(meter, ms / 1000)
        charges += made
    assert len(charges) == 1000
    assert sum(c.micro for c in charges) == meter.cost_micro == cost_of(price, 1000) == 194


def test_the_report_of_a_run_is_billed_from_the_engines_start_not_from_the_report():
    meter, _ = metering.running(Meter(to_micro(3600)), 100.0, 100.0, 105.0)
    meter, charges = metering.tick(meter, 110.0)
    assert [(c.start, c.end, c.ms) for c in charges] == [(100.0, 110.0, 10_000)]


def test_an_engine_start_ahead_of_the_apis_clock_is_billed_from_now():
    meter, _ = metering.running(Meter(to_micro(3600)), 200.0, 200.0, 150.0)
    assert meter.meter_from == meter.run_started == 150.0


def test_a_restart_is_a_new_run_and_the_old_one_is_closed_at_the_new_report():
    meter, _ = metering.running(Meter(to_micro(3600)), 10.0, 10.0, 10.0)
    meter, charges = metering.running(meter, 50.0, 50.0, 52.0)
    assert [(c.start, c.end) for c in charges] == [(10.0, 52.0)]
    assert (meter.run_key, meter.meter_from, meter.run_ms) == (50.0, 50.0, 0)


def test_a_short_silence_is_billed_and_a_long_one_is_not():
    price = to_micro(3600)
    meter, _ = metering.running(Meter(price), 0.0, 0.0, 0.0)
    meter, _ = metering.tick(meter, 10.0)
    assert metering.seen_again(meter, 10.0 + SILENCE_GRACE_S) == meter  # at the grace: still billed
    later = metering.seen_again(meter, 10.0 + SILENCE_GRACE_S + 1)
    assert (later.meter_from, later.unseen) == (71.0, ((10.0, 71.0),))
    # Ended during the silence, at 5 s: of the 10 s charged before it, 5 are given back.
    meter, charges = metering.ended(later, 5.0, 200.0)
    assert [c.ms for c in charges] == [-5000] and meter.billed_ms == 5_000


def test_time_charged_past_the_finish_is_given_back_after_a_long_silence():
    """The engine ends the run at 10 s; its report is still on its way when the executor
    goes silent at 15 s (the lose-sight tick charges up to 15 s); it comes back two minutes
    later and reports the end at 10 s.  The container ran 10 s: 10 s are billed."""
    meter, _ = metering.running(Meter(to_micro(3600)), 0.0, 0.0, 0.0)
    meter, _ = metering.tick(meter, 15.0)  # Ledger.lose_sight
    meter = metering.seen_again(meter, 135.0)
    meter, _ = metering.ended(meter, 10.0, 135.5)
    assert (meter.billed_ms, meter.cost_micro) == (10_000, to_micro(10))


def test_a_run_that_ended_before_two_long_silences_keeps_what_it_ran_before_them():
    """Run from 0; charged to 30 when the executor goes silent; the engine ends it at 40;
    back at 200 (a long silence), silent again at 201, back at 400, and only then is the
    end at 40 reported.  Seen running: 0 to 30.  Billed: 30 s."""
    meter, _ = metering.running(Meter(to_micro(3600)), 0.0, 0.0, 0.0)
    meter, _ = metering.tick(meter, 30.0)  # Ledger.lose_sight
    meter = metering.seen_again(meter, 200.0)
    meter, _ = metering.tick(meter, 201.0)  # Ledger.lose_sight again
    meter = metering.seen_again(meter, 400.0)
    meter, _ = metering.ended(meter, 40.0, 400.5)
    assert (meter.billed_ms, meter.cost_micro) == (30_000, to_micro(30))


def test_a_running_report_of_a_run_that_already_ended_opens_nothing():
    """A late copy of a run's running report (the same engine start: no new run) after its
    end: the run stays billed 3 s, and nothing accrues."""
    meter, _ = metering.running(Meter(to_micro(3600)), 0.0, 0.0, 0.5)
    meter, _ = metering.ended(meter, 3.0, 3.5)
    late, charges = metering.running(meter, 0.0, 0.0, 100.0)
    assert (late, charges) == (meter, ())
    assert metering.tick(late, 200.0)[0].billed_ms == 3000


def test_a_halted_run_is_billed_up_to_the_halt_and_never_after():
    meter, _ = metering.running(Meter(to_micro(3600)), 0.0, 0.0, 0.0)
    meter, charges = metering.halt(meter, 4.0)
    assert [c.ms for c in charges] == [4000]
    assert metering.tick(meter, 100.0) == (meter, ())
    assert metering.ended(meter, 90.0, 100.0) == (meter, ())


def test_nothing_runs_nothing_is_billed():
    meter = Meter(to_micro(3600))
    assert metering.tick(meter, 100.0) == (meter, ())
    assert metering.ended(meter, 100.0, 100.0) == (meter, ())
    assert metering.halt(meter, 100.0) == (meter, ())
    assert metering.seen_again(meter, 10_000.0) == meter


# --- money ----------------------------------------------------------------------------


@pytest.mark.parametrize(("amount", "micro"), [
    (0, 0),
    (1, 1_000_000),
    ("3.000000", 3_000_000),
    (0.1 + 0.2, 300_000),  # 0.30000000000000004: taken by its shortest repr
    (2.675, 2_675_000),  # binary 2.67499999...: still 2.675
    (0.0000005, 1),  # half up
    ("0.0000004999", 0),
    ("1.0000015", 1_000_002),
    (-0.0000005, -1),  # half away from zero, as Decimal's ROUND_HALF_UP
    (-1.5, -1_500_000),
    (1e12, 10**18),
    ("123456789012.3456785", 123_456_789_012_345_679),
    (Decimal("0.1"), 100_000),
    (10**15, 10**21),
])
def test_to_micro_rounds_half_up_exactly(amount, micro):
    assert to_micro(amount) == micro


@pytest.mark.parametrize("amount", ["abc", "", float("nan"), float("inf"), float("-inf"), Decimal("NaN"), "1e"])
def test_to_micro_refuses_what_is_not_an_amount(amount):
    with pytest.raises(ValueError):
        to_micro(amount)


@pytest.mark.parametrize(("micro", "amount"), [
    (None, None), (0, 0.0), (1, 0.000001), (3_000_000, 3.0), (-1_500_000, -1.5),
    (123_456_789, 123.456789), (10**18, 1e12), (10**18 + 1, 1000000000000.000001),
])
def test_from_micro_gives_the_number_the_contract_shows(micro, amount):
    assert from_micro(micro) == amount


@given(st.integers(-10**15, 10**15))
def test_micro_units_survive_the_trip_through_a_json_number(micro):
    assert to_micro(from_micro(micro)) == micro


@pytest.mark.parametrize(("price", "ms", "micro"), [
    (to_micro(3600), 3000, 3_000_000),
    (to_micro(3600), 1, 1000),
    (1, 1_800_000, 1),  # half a micro-unit: up
    (1, 1_799_999, 0),
    (1, 3_600_000, 1),
    (0, 10**9, 0),
    (to_micro(1), 0, 0),
    (to_micro("0.5"), 3_600_000 * 10**6, 500_000 * 10**6),  # a million hours, exact
    (10**18, 3_600_000, 10**18),
])
def test_cost_of_is_exact_and_rounds_half_up(price, ms, micro):
    assert cost_of(price, ms) == micro


@given(st.integers(0, 10**13), st.integers(0, 10**10))
def test_cost_of_matches_decimal_arithmetic(price, ms):
    with localcontext() as ctx:
        ctx.prec = 60
        exact = Decimal(price) * Decimal(ms) / Decimal(3_600_000)
        assert cost_of(price, ms) == int(exact.to_integral_value(rounding=ROUND_HALF_UP))


def test_one_minute_is_a_sixtieth_of_the_hourly_price():
    assert per_minute(to_micro(3600)) == to_micro(60)
    assert per_minute(to_micro("0.5")) == 8333  # 8333.33...
    assert per_minute(0) == 0


@pytest.mark.parametrize(("amount", "fraction", "part"), [
    (1_000_000, 200_000, 200_000),
    (1, 500_000, 1),  # half: away from zero
    (-1, 500_000, -1),
    (3, 333_333, 1),
    (7, 0, 0),
    (7, MICRO, 7),
    (0, 200_000, 0),
])
def test_share_rounds_half_away_from_zero(amount, fraction, part):
    assert share(amount, fraction) == part


@given(st.integers(-10**15, 10**15), st.integers(0, MICRO))
def test_a_refund_gives_back_exactly_the_share_its_charge_took(amount, fraction):
    assert share(-amount, fraction) == -share(amount, fraction)
    assert abs(share(amount, fraction)) <= abs(amount)


@pytest.mark.parametrize(("micro", "text"), [
    (0, "0"), (1, "0.000001"), (1_500_000, "1.5"), (3_000_000, "3"), (-1_500_000, "-1.5"),
    (-1, "-0.000001"), (10_000_000, "10"), (123_456_789, "123.456789"),
    (10**18, "1000000000000"), (10**18 + 1, "1000000000000.000001"),
])
def test_format_money_writes_amounts_as_people_do(micro, text):
    assert format_money(micro) == text


def test_an_end_with_the_engines_start_bills_from_it_when_running_was_heard_without():
    """The agent reports running right after the engine's start answer, without the
    engine's own start; the end carries it, and the run is billed from there."""
    meter, _ = metering.running(Meter(to_micro(3600), placed_at=9.0), None, None, 10.05)
    meter, charges = metering.ended(meter, 10.2, 10.3, started=10.0)
    assert meter.billed_ms == 200 and sum(c.micro for c in charges) == to_micro(0.2)
    # Never before the task was placed, whatever the engine's clock says.
    meter, _ = metering.running(Meter(to_micro(3600), placed_at=9.0), None, None, 10.05)
    meter, _ = metering.ended(meter, 10.2, 10.3, started=1.0)
    assert meter.billed_ms == 1200
