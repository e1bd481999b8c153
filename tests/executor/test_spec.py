import pytest

from megamind.executor.gpu import Gpu
from megamind.executor.spec import (
    ALLOWED_CAPABILITIES,
    LABEL_HWID,
    LABEL_IMAGE,
    LABEL_MANAGED,
    LABEL_TASK,
    Limits,
    container_name,
    create_kwargs,
)
from megamind.taskenv import PARAMS_ENV, TASK_ENV

GPUS = [
    Gpu(0, "GPU-5c8d2e1a-7f3b-4c9e-a1d4-0b6e9f2c3a71", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
    Gpu(1, "GPU-e94b07c2-18d5-4a6f-9c3e-72f1d8a0b5e4", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
]


def kwargs(limits=Limits(), gpus=(), extra_labels=None, params='{ "param1": "value1" }'):
    return create_kwargs(
        taskid="t0ask1d",
        hwid="hw0000000000000a",
        image="127.0.0.1:5000/helloworld:latest",
        public_image="megamind.network/helloworld:latest",
        params=params,
        limits=limits,
        gpus=list(gpus),
        extra_labels=extra_labels or {},
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
    assert kwargs()["network_mode"] == "bridge"
    assert kwargs()["pids_limit"] == 4096


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
