import pytest

from megamind.config import AgentConfig
from megamind.executor.gpu import Gpu
from megamind.executor.service import with_memory_share
from megamind.executor.spec import (
    ALLOWED_CAPABILITIES,
    ISOLATED,
    ISOLATED_NETWORK,
    LABEL_CPUTIME,
    LABEL_HWID,
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_MEMORY,
    LABEL_RUNTIME,
    LABEL_TASK,
    Limits,
    TaskRefused,
    container_name,
    create_kwargs,
)
from megamind.jobspec import PortRequest, RunSpec, TaskLimits
from megamind.taskenv import PARAMS_ENV, TASK_ENV

GPUS = [
    Gpu(0, "GPU-5c8d2e1a-7f3b-4c9e-a1d4-0b6e9f2c3a71", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
    Gpu(1, "GPU-e94b07c2-18d5-4a6f-9c3e-72f1d8a0b5e4", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
]


def kwargs(limits=Limits(), gpus=(), extra_labels=None, params='{ "param1": "value1" }', spec=RunSpec(),
           publish_address="0.0.0.0"):
    return create_kwargs(
        taskid="t0ask1d",
        hwid="hw0000000000000a",
        image="127.0.0.1:5000/helloworld:latest",
        public_image="megamind.network/helloworld:latest",
        params=params,
        limits=limits,
        gpus=list(gpus),
        extra_labels=extra_labels or {},
        spec=spec,
        publish_address=publish_address,
    )


def test_image_name_and_labels():
    kw = kwargs(extra_labels={"owner.rack": "r1"})
    assert kw["image"] == "127.0.0.1:5000/helloworld:latest"
    assert kw["name"] == container_name("t0ask1d") == "megamind-t0ask1d"
    assert kw["labels"] == {
        "owner.rack": "r1",
        LABEL_MANAGED: "1",
        LABEL_TASK: "t0ask1d",
        LABEL_HWID: "hw0000000000000a",
        LABEL_IMAGE: "megamind.network/helloworld:latest",
    }


def test_extra_labels_cannot_override_ours():
    kw = kwargs(extra_labels={LABEL_TASK: "other", LABEL_HWID: "other", LABEL_MANAGED: "0"})
    assert kw["labels"][LABEL_TASK] == "t0ask1d"
    assert kw["labels"][LABEL_HWID] == "hw0000000000000a"
    assert kw["labels"][LABEL_MANAGED] == "1"


def test_params_handed_unchanged_in_env():
    params = "-param1 'quoted' $HOME\n{\"x\": 1}"
    env = kwargs(params=params)["environment"]
    assert env == {PARAMS_ENV: params, TASK_ENV: "t0ask1d"}
    assert PARAMS_ENV == "MEGAMIND_PARAMS"
    assert kwargs(params="")["environment"][PARAMS_ENV] == ""


def test_isolation():
    kw = kwargs()
    assert kw["init"] is True
    assert kw["privileged"] is False
    assert kw["cap_drop"] == ["ALL"]
    assert kw["cap_add"] == list(ALLOWED_CAPABILITIES)
    assert "SYS_ADMIN" not in kw["cap_add"] and "NET_ADMIN" not in kw["cap_add"]
    assert kw["security_opt"] == ["no-new-privileges"]
    assert kw["detach"] is True
    assert kw["tty"] is False
    assert kw["restart_policy"] == {"Name": "no"}


def test_network_and_pids_limit():
    kw = kwargs(Limits(network="megamind-tasks", pids_limit=256))
    assert kw["network_mode"] == "megamind-tasks"
    assert kw["pids_limit"] == 256
    assert kwargs()["pids_limit"] == 4096


def test_tasks_run_on_the_hosts_isolated_network_by_default():
    assert Limits().network == AgentConfig().network == ISOLATED == "isolated"
    assert kwargs()["network_mode"] == ISOLATED_NETWORK == "megamind-isolated"
    # The owner's other modes reach the engine as they are.
    for mode in ("bridge", "none", "host", "owners-net"):
        assert kwargs(Limits(network=mode))["network_mode"] == mode


def test_ports_are_published_from_the_isolated_network():
    spec = RunSpec(ports=(PortRequest(8888),))
    assert kwargs(spec=spec, publish_address="127.0.0.1")["ports"] == {"8888/tcp": ("127.0.0.1", None)}


def test_the_writable_layer_is_bounded_only_when_the_owner_says():
    assert "storage_opt" not in kwargs()
    assert kwargs(Limits(disk_quota_gb=20))["storage_opt"] == {"size": "20G"}


def test_the_owners_settings_make_the_limits():
    config = AgentConfig(network="bridge", memory_mb=512, cpus=1.5, pids_limit=100, disk_quota_gb=8)
    assert Limits.of(config) == Limits(network="bridge", memory_mb=512, cpus=1.5, pids_limit=100, disk_quota_gb=8)
    assert Limits.of(AgentConfig()) == Limits()


def test_each_slots_tasks_are_limited_to_its_share_of_the_ram():
    share = {"ram": 4000}  # what the slot reports: RAM/N, or --memory if smaller (`slot_hardware`)
    assert with_memory_share(AgentConfig(slots=4), share).memory_mb == 4000
    assert Limits.of(with_memory_share(AgentConfig(slots=4), share)).memory_mb == 4000
    # One slot: all of the RAM it reports (no more than the owner's --memory).
    assert with_memory_share(AgentConfig(slots=1), share).memory_mb == 4000
    assert with_memory_share(AgentConfig(slots=1, memory_mb=512), {"ram": 512}).memory_mb == 512
    # RAM unknown (no /proc/meminfo): nothing to share out.
    assert with_memory_share(AgentConfig(slots=4), {"ram": 0}).memory_mb is None


def test_memory_and_cpu_limits():
    kw = kwargs(Limits(memory_mb=512, cpus=1.5))
    assert kw["mem_limit"] == "512m"
    assert kw["memswap_limit"] == "512m"
    assert kw["nano_cpus"] == 1_500_000_000


def test_no_memory_or_cpu_limits_by_default():
    kw = kwargs()
    assert not {"mem_limit", "memswap_limit", "nano_cpus"} & kw.keys()


def test_log_config_bounded():
    log_config = kwargs()["log_config"]
    assert log_config.type == "json-file"
    assert log_config.config["max-size"] == "10m"
    assert log_config.config["max-file"] == "3"


def test_device_requests_only_with_gpus():
    assert "device_requests" not in kwargs()
    requests = kwargs(gpus=GPUS)["device_requests"]
    assert len(requests) == 1
    assert requests[0]["Driver"] == "nvidia"
    assert requests[0]["DeviceIDs"] == [g.uuid for g in GPUS]
    assert requests[0]["Capabilities"] == [["gpu"]]


def test_no_host_storage():
    for kw in (kwargs(), kwargs(Limits(memory_mb=1, cpus=1), gpus=GPUS)):
        assert not {"volumes", "binds", "mounts", "volumes_from", "tmpfs", "devices"} & kw.keys()
        assert kw.get("pid_mode") is None and kw.get("ipc_mode") is None


def test_host_network_needs_the_owners_consent():
    from megamind.executor.spec import HostNetworkRefused, Limits

    with pytest.raises(HostNetworkRefused):
        Limits.checked("host", allow_host_network=False)
    assert Limits.checked("host", allow_host_network=True).network == "host"
    assert Limits.checked("none", allow_host_network=False, pids_limit=10).pids_limit == 10


# --- the task's own spec ---------------------------------------------------------------


def test_an_empty_spec_leaves_the_image_as_built():
    kw = kwargs()
    assert not {"command", "working_dir", "ports", "ulimits", "entrypoint"} & kw.keys()
    assert not {LABEL_MEMORY, LABEL_CPUTIME, LABEL_RUNTIME} & kw["labels"].keys()


def test_command_env_and_workdir():
    spec = RunSpec(command=("python", "train.py", "--epochs", "3 words"), env={"EPOCHS": "3", "A_B": ""},
                   workdir="/work")
    kw = kwargs(spec=spec)
    assert kw["command"] == ["python", "train.py", "--epochs", "3 words"]  # a list: run as is, no shell
    assert "entrypoint" not in kw
    assert kw["working_dir"] == "/work"
    assert kw["environment"] == {"EPOCHS": "3", "A_B": "", PARAMS_ENV: '{ "param1": "value1" }', TASK_ENV: "t0ask1d"}


def test_an_empty_command_list_is_kept_as_given():
    assert kwargs(spec=RunSpec(command=()))["command"] == []


def test_the_platforms_variables_win_over_the_tasks():
    # The API refuses MEGAMIND_* names; should one get here anyway, it hides nothing.
    kw = kwargs(spec=RunSpec(env={TASK_ENV: "other", PARAMS_ENV: "other"}), params="mine")
    assert kw["environment"] == {PARAMS_ENV: "mine", TASK_ENV: "t0ask1d"}


def test_the_tasks_limits_alone():
    spec = RunSpec(limits=TaskLimits(cpus=2.0, memory=4096, cputime=3600, runtime=7200))
    kw = kwargs(spec=spec)
    assert kw["mem_limit"] == kw["memswap_limit"] == "4096m"
    assert kw["nano_cpus"] == 2_000_000_000
    [ulimit] = kw["ulimits"]
    assert (ulimit.name, ulimit.soft, ulimit.hard) == ("cpu", 3600, 3601)
    assert {k: kw["labels"][k] for k in (LABEL_MEMORY, LABEL_CPUTIME, LABEL_RUNTIME)} == {
        LABEL_MEMORY: "4096", LABEL_CPUTIME: "3600", LABEL_RUNTIME: "7200"}


@pytest.mark.parametrize(("owner", "task", "memory", "nano_cpus"), [
    (Limits(memory_mb=2048, cpus=1.5), TaskLimits(memory=4096, cpus=2.0), "2048m", 1_500_000_000),
    (Limits(memory_mb=8192, cpus=4.0), TaskLimits(memory=4096, cpus=0.5), "4096m", 500_000_000),
    (Limits(memory_mb=512, cpus=0.25), TaskLimits(), "512m", 250_000_000),
    (Limits(), TaskLimits(memory=300, cpus=3.0), "300m", 3_000_000_000),
])
def test_where_owner_and_task_both_limit_the_smaller_applies(owner, task, memory, nano_cpus):
    kw = kwargs(owner, spec=RunSpec(limits=task))
    assert kw["mem_limit"] == kw["memswap_limit"] == memory
    assert kw["nano_cpus"] == nano_cpus
    assert kw["labels"][LABEL_MEMORY] == memory.removesuffix("m")  # the limit an OOM is explained by


def test_ports_are_published_on_the_owners_address():
    spec = RunSpec(ports=(PortRequest(8888), PortRequest(22, 2222)))
    assert kwargs(spec=spec, publish_address="127.0.0.1")["ports"] == {
        "8888/tcp": ("127.0.0.1", None),  # None: a free port the engine picks
        "22/tcp": ("127.0.0.1", 2222),
    }
    assert kwargs(spec=spec)["ports"]["8888/tcp"] == ("0.0.0.0", None)


@pytest.mark.parametrize("network", ["none", "host"])
def test_ports_on_an_executor_without_a_network_of_its_own_are_refused_plainly(network):
    spec = RunSpec(ports=(PortRequest(8888),))
    with pytest.raises(TaskRefused) as refused:
        kwargs(Limits(network=network), spec=spec)
    assert str(refused.value) == f"ports cannot be published: this executor runs tasks with --network {network}"
    assert "ports" not in kwargs(Limits(network=network))  # a task without ports runs there


def test_the_owners_labels_cannot_hide_the_limit_labels():
    spec = RunSpec(limits=TaskLimits(runtime=60))
    kw = kwargs(spec=spec, extra_labels={LABEL_RUNTIME: "999999", "owner.rack": "r1"})
    assert kw["labels"][LABEL_RUNTIME] == "60"
    assert kw["labels"]["owner.rack"] == "r1"


def test_every_field_through_the_wire_to_the_engine():
    """What the API sends in a command is what the container is made with."""
    wire = {"command": ["sh", "-c", "echo hi"], "env": {"EPOCHS": "3"}, "workdir": "/work",
            "ports": [8888, {"container": 22, "host": 2222}],
            "limits": {"cpus": 1, "memory": 256, "cputime": 10, "runtime": 60}}
    kw = kwargs(Limits(network="bridge", memory_mb=1024), spec=RunSpec.from_wire(wire), publish_address="10.0.0.5")
    assert kw["command"] == ["sh", "-c", "echo hi"]
    assert kw["environment"]["EPOCHS"] == "3"
    assert kw["working_dir"] == "/work"
    assert kw["ports"] == {"8888/tcp": ("10.0.0.5", None), "22/tcp": ("10.0.0.5", 2222)}
    assert (kw["mem_limit"], kw["nano_cpus"]) == ("256m", 1_000_000_000)
    assert kw["ulimits"][0]["Soft"] == 10 and kw["ulimits"][0]["Hard"] == 11
    assert kw["labels"][LABEL_RUNTIME] == "60"
