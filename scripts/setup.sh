#!/usr/bin/env bash
# Installs and starts what Megamind needs on a Debian machine, as root:
# Debian's docker.io, docker-registry and busybox-static, a running dockerd, and a
# virtualenv (.venv) holding the package and its test tools.  Each step is skipped
# when already done, so running it again costs seconds.
# Sourced by scripts/test and scripts/demo; sets MEGAMIND_ROOT and VENV.
set -euo pipefail

MEGAMIND_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$MEGAMIND_ROOT/.venv"
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/megamind-dockerd.log}

say() { echo "[setup] $*" >&2; }

install_debian_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker >/dev/null 2>&1 || missing+=(docker.io)
    command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            say "missing Debian packages: ${missing[*]}; run as root or install them first"
            exit 1
        fi
        say "installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >&2
        apt-get install -y -q --no-install-recommends $(printf '%s\n' "${missing[@]}" | sort -u) >&2
    fi
}

start_dockerd() {
    if docker info >/dev/null 2>&1; then
        return
    fi
    say "starting dockerd (log: $DOCKERD_LOG)"
    # live-restore: task containers outlive an engine restart, as they outlive an agent restart.
    # Started from a subshell that exits at once, so the engine is adopted by init and not
    # left a child of whatever this script execs next (pytest would never reap it).
    (setsid dockerd --live-restore >"$DOCKERD_LOG" 2>&1 </dev/null &)
    for _ in $(seq 1 120); do
        docker info >/dev/null 2>&1 && return
        sleep 0.5
    done
    say "dockerd did not start; see $DOCKERD_LOG"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    exit 1
}

make_venv() {
    local stamp="$VENV/.megamind-installed"
    local want
    want=$(cat "$MEGAMIND_ROOT/pyproject.toml" | sha256sum | cut -c1-16)
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    python3 - <<'PY' || { say "Python 3.11 or newer is needed"; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY
    say "installing megamind into $VENV"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip >&2
    "$VENV/bin/python" -m pip install -q -e "$MEGAMIND_ROOT[test]" >&2
    echo "$want" >"$stamp"
}

install_debian_packages
start_dockerd
make_venv
