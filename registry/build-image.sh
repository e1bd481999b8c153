#!/usr/bin/env bash
# Build one of the example images under registry/images/ and push it to a
# Megamind registry, as your account (the registry runs with token auth).
#
#   registry/build-image.sh NAME [TAG] [REGISTRY]
#
#   NAME      a directory under registry/images/ holding a Dockerfile
#   TAG       image tag (default: latest)
#   REGISTRY  registry address as host:port (default: the one the API names)
#
# Credentials: the API and your api-key as `megamind` finds them: MEGAMIND_API_URL and
# MEGAMIND_API_KEY, or what `megamind login` stored.  The push goes through `megamind
# push`, which logs the engine in with your account's name and api-key (in memory only).
# A repository belongs to the account that pushed it first; only that account may push
# to it again.  MEGAMIND_PUBLISH=1 publishes it once pushed (every account may run it).
# MEGAMIND_CLI names the megamind command (default: `megamind` on PATH, else .venv's).
#
# Example:
#   MEGAMIND_API_KEY=mk_... registry/build-image.sh helloworld latest 127.0.0.1:5000
#   -> pushes 127.0.0.1:5000/helloworld:latest, which customers then run as
#      megamind.network/helloworld:latest
#
# When the Dockerfile copies a file named "busybox", the host's static busybox
# (/bin/busybox from Debian's busybox-static, or $BUSYBOX) is copied next to it
# first; that copy is git-ignored.
#
# Uses the legacy builder (DOCKER_BUILDKIT=0). On success the only thing
# written to stdout is the pushed reference; progress goes to stderr.
set -euo pipefail

usage() {
    echo "usage: $0 NAME [TAG] [REGISTRY]" >&2
    echo "  e.g. $0 helloworld latest 127.0.0.1:5000" >&2
    exit 2
}

die() {
    echo "build-image: $*" >&2
    exit 1
}

[[ $# -ge 1 && $# -le 3 ]] || usage
case "$1" in -h|--help) usage ;; esac

name=$1
tag=${2:-latest}
registry=${3:-}
busybox_src=${BUSYBOX:-/bin/busybox}

# Repository names: lowercase components of [a-z0-9] joined by ".", "_", "__"
# or runs of "-", separated by "/". Tags: up to 128 of [A-Za-z0-9_.-], not
# starting with "." or "-".
component='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*'
[[ $name =~ ^${component}(/${component})*$ ]] \
    || die "invalid image name '$name' (lowercase letters, digits and . _ - only)"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] \
    || die "invalid tag '$tag'"
[[ -z $registry || $registry =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] \
    || die "invalid registry address '$registry' (expected host:port, e.g. 127.0.0.1:5000)"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ -n ${MEGAMIND_CLI:-} ]]; then
    read -r -a megamind <<<"$MEGAMIND_CLI"
elif command -v megamind >/dev/null 2>&1; then
    megamind=(megamind)
elif [[ -x "$here/../.venv/bin/megamind" ]]; then
    megamind=("$here/../.venv/bin/megamind")
else
    die "no megamind command: install the package (scripts/setup.sh) or set MEGAMIND_CLI"
fi
context="$here/images/$name"
[[ -f "$context/Dockerfile" ]] || die "no Dockerfile at $context/Dockerfile"

# Copy the static busybox in when the Dockerfile needs it.
if grep -Eiq '^[[:space:]]*(COPY|ADD)([[:space:]]+--[^[:space:]]+)*[[:space:]]+(\./)?busybox[[:space:]]' \
        "$context/Dockerfile"; then
    [[ -x $busybox_src ]] \
        || die "$busybox_src not found: install busybox-static (apt-get install busybox-static) or set BUSYBOX"
    if ! cmp -s "$busybox_src" "$context/busybox"; then
        echo "build-image: copying $busybox_src into $context/" >&2
        cp "$busybox_src" "$context/busybox"
        chmod 0755 "$context/busybox"
    fi
fi

echo "build-image: building $context" >&2
image_id=$(DOCKER_BUILDKIT=0 docker build -q "$context") \
    || die "docker build failed for $context"
echo "build-image: built $image_id" >&2

push_args=(push "$image_id" "$name:$tag" --json)
[[ -n $registry ]] && push_args+=(--registry "$registry")
[[ ${MEGAMIND_PUBLISH:-} == 1 ]] && push_args+=(--public)
pushed=$("${megamind[@]}" "${push_args[@]}") \
    || die "megamind push of $name:$tag failed (is the registry running, and are you logged in?)"

# What the registry now holds, e.g. 127.0.0.1:5000/helloworld:latest.
python3 -c 'import json, sys; print(json.load(sys.stdin)["pushed_to"])' <<<"$pushed"
