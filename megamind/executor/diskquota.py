"""Whether this engine can bound a task container's writable layer (``--disk-quota-gb``).

Docker's ``--storage-opt size=`` works on some storage drivers only: devicemapper, btrfs
and zfs, and overlay2 (or vfs) when its backing filesystem is xfs mounted with project
quotas (``pquota``).  ``docker info`` names the driver and, for overlay2, the backing
filesystem, but not the mount options: where it may work, a probe asks the engine to make
a container with the limit, as a task's would be made, and nothing else.  An agent whose
owner asks for a quota the engine cannot give refuses to start, saying why.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from typing import Any

from docker.errors import APIError

from megamind.executor.runtime import DockerRuntime
from megamind.executor.spec import LABEL_MANAGED, storage_opt

QUOTA_DRIVERS = ("devicemapper", "btrfs", "zfs", "windowsfilter")
# Drivers with a quota only on xfs mounted with pquota: the probe decides.
XFS_QUOTA_DRIVERS = ("overlay2", "vfs")
BACKING_FILESYSTEM = "Backing Filesystem"


def refusal_from_info(info: dict[str, Any]) -> str | None:
    """Why this engine (``docker info``) cannot limit a writable layer, or None when it may:
    then only a probe tells."""
    driver = info.get("Driver") or "unknown"
    status = {str(pair[0]): str(pair[1]) for pair in info.get("DriverStatus") or () if len(pair) == 2}
    backing = status.get(BACKING_FILESYSTEM)
    if driver in QUOTA_DRIVERS:
        return None
    if driver in XFS_QUOTA_DRIVERS:
        if backing in (None, "xfs"):  # vfs does not say: the probe will
            return None
        return (f"the storage driver {driver} limits a container's writable layer only on xfs mounted "
                f"with pquota, and this engine's is on {backing}")
    return f"the storage driver {driver} cannot limit a container's writable layer"


def _empty_tar() -> bytes:
    archive = io.BytesIO()
    tarfile.open(fileobj=archive, mode="w").close()
    return archive.getvalue()


def probe(runtime: DockerRuntime, gb: int, labels: dict[str, str] | None = None) -> str | None:
    """The engine's refusal of a ``gb`` writable layer, or None when it makes one.

    The probe's container (never started) and its empty image are removed at once.
    """
    labels = {**(labels or {}), LABEL_MANAGED: "1"}
    reference = f"megamind-quota-probe-{uuid.uuid4().hex[:12]}:probe"
    repository, tag = reference.split(":")
    runtime.api.import_image_from_data(
        _empty_tar(), repository=repository, tag=tag, changes=[f"LABEL {k}={v}" for k, v in labels.items()]
    )
    try:
        container = runtime.api.create_container(
            reference, command=["/probe"], labels=labels,
            host_config=runtime.api.create_host_config(network_mode="none", storage_opt=storage_opt(gb)),
        )
    except APIError as exc:
        if exc.status_code == 404:  # the image vanished: not an answer about quotas
            raise
        return exc.explanation or str(exc)
    else:
        runtime.remove(container["Id"])
        return None
    finally:
        runtime.remove_image(reference)


def refusal(runtime: DockerRuntime, gb: int, labels: dict[str, str] | None = None) -> str | None:
    """Why ``--disk-quota-gb gb`` cannot be honoured here, or None when it can."""
    return refusal_from_info(runtime.info()) or probe(runtime, gb, labels)
