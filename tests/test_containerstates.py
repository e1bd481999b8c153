from megamind.containerstates import container_status, task_state_of
from megamind.protocol import ContainerStatus
from megamind.states import TaskState


def test_the_one_mapping_from_container_status_to_task_state():
    assert container_status("running") is ContainerStatus.RUNNING
    assert container_status("paused") is ContainerStatus.RUNNING
    assert container_status("dead") is ContainerStatus.EXITED
    assert container_status("created") is ContainerStatus.CREATED
    assert task_state_of(ContainerStatus.RUNNING, None) == (TaskState.RUNNING, "")
    assert task_state_of(ContainerStatus.EXITED, 0) == (TaskState.STOPPED, "")
    assert task_state_of(ContainerStatus.EXITED, None) == (TaskState.STOPPED, "")
    assert task_state_of(ContainerStatus.EXITED, 137) == (TaskState.ERROR, "exited with code 137")
    assert task_state_of(ContainerStatus.CREATED, None) == (TaskState.ERROR, "container left created")
