#!/usr/bin/env bash
# Build one of the example images under registry/images/ and push it to a
# Megamind registry.
#
#   registry/build-image.sh NAME [TAG] [REGISTRY]
#
#   NAME      a directory under registry/images/ holding a Dockerfile
#   TAG       image tag (default: latest)
#   REGISTRY  registry address as host:port (default: 127.0.0.1:5000)
#
# Example:
#   registry/build-image.sh helloworld latest 127.0.0.1:5000
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
registry=${3:-127.0.0.1:5000}
busybox_src=${BUSYBOX:-/bin/busybox}

# Repository names: lowercase components of [a-z0-9] joined by ".", "_", "__"
# or runs of "-", separated by "/". Tags: up to 128 of [A-Za-z0-9_.-], not
# starting with "." or "-".
component='[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*'
[[ $name =~ ^${component}(/${component})*$ ]] \
    || die "invalid image name '$name' (lowercase letters, digits and . _ - only)"
[[ $tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] \
    || die "invalid tag '$tag'"
[[ $registry =~ ^[A-Za-z0-9.-]+(:[0-9]+)?$ ]] \
    || die "invalid registry address '$registry' (expected host:port, e.g. 127.0.0.1:5000)"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
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

ref="$registry/$name:$tag"

echo "build-image: building $context" >&2
image_id=$(DOCKER_BUILDKIT=0 docker build -q "$context") \
    || die "docker build failed for $context"
echo "build-image: built $image_id" >&2

docker tag "$image_id" "$ref"

echo "build-image: pushing $ref" >&2
docker push "$ref" >&2 || die "docker push $ref failed (is the registry running at $registry?)"

echo "$ref"
