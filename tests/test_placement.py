"""Which executor can hold a task: the pure functions, against a check written out plainly."""

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from megamind.jobspec import TaskLimits
from megamind.placement import (
    Capacity,
    Need,
    Requirements,
    fits,
    never_fits,
    pending_reason,
    placement_order,
    shortfalls,
)

MODELS = ("nVidia 1060 6G", "nVidia RTX 3090", "AMD MI50")
# Few distinct values, so ties and exact boundaries come up often.
COSTS = (0.1, 0.5, 1.0, 2.0)
RATINGS = (1.0, 2.5, 4.0, 8.0)

fast = settings(max_examples=150, deadline=None)


@st.composite
def hardwares(draw) -> dict:
    """What an agent reports: sometimes without the newer figures, or with some GPU memory unknown."""
    gpus = draw(st.lists(st.sampled_from(MODELS), max_size=4))
    memory = draw(st.lists(st.sampled_from((4000, 6000, 8000, 24000)), min_size=len(gpus), max_size=len(gpus)))
    hardware = {
        "gpus": gpus,
        "gpu_memory_mb": memory[:draw(st.integers(0, len(memory)))] if draw(st.booleans()) else memory,
        "cpus": ["cpu"] * draw(st.integers(1, 2)),
        "ram": draw(st.sampled_from((0, 2000, 8000, 16000, 64000))),
        "calculated_perfomance_rating": draw(st.sampled_from(RATINGS)),
    }
    if draw(st.booleans()):
        hardware["cpu_count"] = draw(st.integers(1, 32))
    if draw(st.booleans()):
        hardware["cpu_limit"] = draw(st.sampled_from((None, 0.5, 1.0, 2.0, 6.0)))
    return hardware


def capacities(hwid: str = "h") -> st.SearchStrategy[Capacity]:
    return st.builds(Capacity.of, st.just(hwid), hardwares(), st.sampled_from(COSTS))


def sometimes(*values):
    """Mostly left out, so that a fair share of tasks fit somewhere."""
    return st.sampled_from((None,) * 8 + values)


requirements = st.builds(
    Requirements,
    gpus=sometimes(0, 1, 2, 5),
    gpu_model=sometimes("1060", "rtx", "mi50", "a100", "NVIDIA"),
    min_vram_mb=sometimes(0, 4000, 6000, 10000),
    cpus=sometimes(0, 1, 2, 40),
    ram=sometimes(0, 1000, 8000, 100000),
    max_cost=sometimes(*COSTS),
    min_rating=sometimes(*RATINGS),
)
limits = st.builds(TaskLimits, cpus=sometimes(0.5, 1.0, 2.0, 8.0), memory=sometimes(500, 4096, 20000))


def reference_fits(req: Requirements, lim: TaskLimits, hardware: dict, cost: float) -> bool:
    """The contract's words, one by one: "at least this many GPUs", "every GPU's name contains
    this", "every GPU has at least this much memory", and so on; asking anything of a GPU
    asks for one.  The owner's --cpus caps the CPU share a task may be given."""
    gpus, memory = hardware["gpus"], hardware["gpu_memory_mb"]
    cpu_count = hardware.get("cpu_count") or len(hardware["cpus"])
    cpu_share = min(hardware["cpu_limit"], cpu_count) if hardware.get("cpu_limit") else cpu_count
    wants_gpu = bool(req.gpus) or req.gpu_model is not None or req.min_vram_mb is not None
    checks = [
        len(gpus) >= (req.gpus or 0),
        not wants_gpu or len(gpus) >= 1,
        req.gpu_model is None or all(req.gpu_model.lower() in name.lower() for name in gpus),
        not req.min_vram_mb or (len(memory) == len(gpus) and all(m >= req.min_vram_mb for m in memory)),
        req.cpus is None or cpu_count >= req.cpus,
        lim.cpus is None or cpu_share >= lim.cpus,
        req.ram is None or hardware["ram"] >= req.ram,
        lim.memory is None or hardware["ram"] >= lim.memory,
        req.max_cost is None or cost <= req.max_cost,
        req.min_rating is None or hardware["calculated_perfomance_rating"] >= req.min_rating,
    ]
    return all(checks)


@fast
@given(requirements, limits, hardwares(), st.sampled_from(COSTS))
def test_fits_agrees_with_the_plain_reading(req, lim, hardware, cost):
    cap = Capacity.of("h", hardware, cost)
    need = Need.of(req, lim)
    assert fits(need, cap) == reference_fits(req, lim, hardware, cost)
    assert fits(need, cap) == (shortfalls(need, cap) == [])


@fast
@given(requirements, limits, capacities())
def test_the_store_narrowing_never_drops_an_executor_that_fits(req, lim, cap):
    """The store narrows candidates in SQL on Capacity.columns; fits has the last word, so the
    narrowing may keep too many but must never lose one that fits."""
    need = Need.of(req, lim)
    if not fits(need, cap):
        return
    columns = cap.columns()
    assert columns["gpu_count"] >= need.gpus and columns["min_vram_mb"] >= need.vram_mb
    assert columns["cpu_count"] >= need.cpus and columns["cpu_share"] >= need.cpu_share - 1e-9
    assert columns["ram_mb"] >= need.ram
    assert need.max_cost is None or cap.cost <= need.max_cost
    assert need.min_rating is None or columns["rating"] >= need.min_rating


fleets = st.lists(st.tuples(hardwares(), st.sampled_from(COSTS)), min_size=1, max_size=6).map(
    lambda items: [Capacity.of(f"h{i}", hw, cost) for i, (hw, cost) in enumerate(items)])


@fast
@given(requirements, limits, fleets)
def test_placement_order_picks_the_cheapest_then_the_higher_rating(req, lim, fleet):
    need = Need.of(req, lim)
    fitting = [cap for cap in fleet if fits(need, cap)]
    if not fitting:
        return
    chosen = min(fitting, key=placement_order)
    for other in fitting:
        assert chosen.cost < other.cost or (chosen.cost == other.cost and chosen.rating >= other.rating)


@fast
@given(requirements, limits, fleets)
def test_never_fits_names_what_no_executor_has(req, lim, fleet):
    need = Need.of(req, lim)
    assume(not any(fits(need, cap) for cap in fleet))
    message = never_fits(need, fleet)
    lacks = [set(shortfalls(need, cap)) for cap in fleet]
    nowhere = set.intersection(*lacks)
    if nowhere:
        assert message.startswith("no executor meets ")
        assert all(item in message for item in nowhere)
    else:
        assert message.startswith("no single executor meets all of ")
        assert all(item in message for item in set.union(*lacks))


@fast
@given(fleets, st.integers(1, 3))
def test_more_gpus_than_any_executor_is_named(fleet, beyond):
    most = max(len(cap.gpu_names) for cap in fleet)
    message = never_fits(Need.of(Requirements(gpus=most + beyond), TaskLimits()), fleet)
    assert f"gpus >= {most + beyond}" in message and message.startswith("no executor meets ")


def test_never_fits_without_any_executor():
    assert never_fits(Need.of(Requirements(), TaskLimits()), []) == "no executor is registered on this platform"


def test_a_memory_limit_is_a_ram_need_and_a_cpu_limit_a_share():
    cap = Capacity.of("h", {"gpus": [], "cpus": ["c"], "cpu_count": 4, "cpu_limit": 2.0, "ram": 4000}, 1.0)
    assert shortfalls(Need.of(Requirements(), TaskLimits(memory=8000)), cap) == ["ram >= 8000 MB"]
    assert shortfalls(Need.of(Requirements(), TaskLimits(cpus=3.0)), cap) == ["limits.cpus 3"]
    assert shortfalls(Need.of(Requirements(cpus=4), TaskLimits(cpus=2.0)), cap) == []


def test_pending_reasons_read_as_a_person_would_say_them():
    assert pending_reason(2, 2, 0) == "2 executors fit; both busy"
    assert pending_reason(1, 1, 0) == "1 executor fits; busy"
    assert pending_reason(1, 0, 1) == "1 executor fits; offline"
    assert pending_reason(3, 3, 0) == "3 executors fit; all busy"
    assert pending_reason(3, 0, 3) == "3 executors fit; all offline"
    assert pending_reason(3, 1, 2) == "3 executors fit; 1 busy, 2 offline"
    assert pending_reason(2, 0, 0) == "2 executors fit; waiting for its turn"
    assert pending_reason(0, 0, 0).startswith("no executor fits")
