"""The task network on the real engine, proved by what the engine says of its objects.

No traffic goes to a container's address: that tasks cannot reach each other is the
network's option (the engine enforces it), read back from the network.  The networks
here have names of this run's own and carry ``megamind.test=<this run>``; the host's
``megamind-isolated`` is made if missing, as an agent would, and left, as an agent does.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import docker
import pytest

from megamind.executor.facade import AsyncDocker
from megamind.executor.network import (
    ICC_OPTION,
    NetworkRefused,
    ensure_isolated,
    prepare,
)
from megamind.executor.spec import (
    ISOLATED,
    ISOLATED_NETWORK,
    LABEL_MANAGED,
    Limits,
    create_kwargs,
)
from megamind.jobspec import PortRequest, RunSpec

from .conftest import TEST_LABEL, read_from


@pytest.fixture(scope="module")
def labelled(engine, run_label):
    """This run's label; its containers, then its networks, are removed after the module."""
    yield {TEST_LABEL: run_label}
    for container in engine.containers.list(all=True, filters={"label": f"{TEST_LABEL}={run_label}"}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    for network in engine.networks.list(filters={"label": f"{TEST_LABEL}={run_label}"}):
        with contextlib.suppress(docker.errors.APIError):
            network.remove()


@pytest.fixture
def name(run_label) -> str:
    return f"megamind-test-{run_label}-{uuid.uuid4().hex[:6]}"


def test_the_isolated_network_is_a_bridge_without_inter_container_traffic(engine, runtime, labelled, name):
    made = ensure_isolated(runtime, name, labelled)
    network = engine.networks.get(name)
    assert network.id == made["Id"]
    assert network.attrs["Driver"] == "bridge"
    assert network.attrs["Options"][ICC_OPTION] == "false"
    assert network.attrs["Labels"][LABEL_MANAGED] == "1"
    assert network.attrs["Internal"] is False  # tasks still reach the internet
    # Made once: a second agent (or a restart) finds it.
    assert ensure_isolated(runtime, name, labelled)["Id"] == made["Id"]
    assert len(engine.networks.list(names=[name])) == 1


def test_a_network_of_that_name_that_lets_containers_talk_is_refused(engine, runtime, labelled, name):
    engine.networks.create(name, driver="bridge", labels=labelled)
    with pytest.raises(NetworkRefused) as refused:
        ensure_isolated(runtime, name, labelled)
    assert f"{ICC_OPTION} is not false" in str(refused.value)
    assert f"docker network rm {name}" in str(refused.value)


def test_twins_made_by_agents_starting_together_come_down_to_the_oldest(engine, runtime, labelled, name):
    options = {ICC_OPTION: "false"}
    first = engine.networks.create(name, driver="bridge", options=options, labels=labelled, check_duplicate=False)
    time.sleep(0.01)  # the engine's creation times tell them apart
    engine.networks.create(name, driver="bridge", options=options, labels=labelled, check_duplicate=False)
    assert len(engine.networks.list(names=[name])) == 2
    assert ensure_isolated(runtime, name, labelled)["Id"] == first.id
    assert [n.id for n in engine.networks.list(names=[name])] == [first.id]


def test_the_owners_other_modes(runtime, labelled, name, engine):
    for mode in ("bridge", "none", "host"):
        assert prepare(runtime, mode) == mode
    with pytest.raises(NetworkRefused) as refused:
        prepare(runtime, name)
    assert str(refused.value) == f"there is no network {name} on this engine (docker network create {name})"
    engine.networks.create(name, driver="bridge", labels=labelled)
    assert prepare(runtime, name) == name


async def test_the_default_mode_makes_the_hosts_isolated_network(engine, runtime):
    docker_ = AsyncDocker(runtime, 1)
    assert await docker_.prepare_network(ISOLATED) == ISOLATED_NETWORK
    assert engine.networks.get(ISOLATED_NETWORK).attrs["Options"][ICC_OPTION] == "false"




def test_tasks_join_the_isolated_network_and_still_publish_ports(engine, runtime, labelled, name, busybox_image,
                                                                 run_label):
    ensure_isolated(runtime, name, labelled)
    spec = RunSpec(command=("/bin/sh", "-c", "while :; do echo hello | nc -l -p 8080; done"),
                   ports=(PortRequest(8080),))
    ids = []
    for n in range(2):
        kwargs = create_kwargs(taskid=f"{run_label}-net{n}", hwid=f"hw-{run_label}", image=busybox_image,
                               public_image="megamind.network/t", params="", limits=Limits(network=name), gpus=[],
                               extra_labels=labelled, spec=spec, publish_address="127.0.0.1")
        ids.append(runtime.create(kwargs).id)
        runtime.start(ids[-1])
    for container_id in ids:
        attrs = engine.api.inspect_container(container_id)
        assert attrs["HostConfig"]["NetworkMode"] == name
        assert set(attrs["NetworkSettings"]["Networks"]) == {name}  # on no other network
        [binding] = {b["HostIp"] for b in attrs["NetworkSettings"]["Ports"]["8080/tcp"]}
        assert binding == "127.0.0.1"
        assert read_from(int(attrs["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"])) == b"hello\n"
    network = engine.networks.get(name)
    assert set(network.attrs["Containers"]) == set(ids)
    assert network.attrs["Options"][ICC_OPTION] == "false"  # the engine drops traffic between them
