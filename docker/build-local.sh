#!/usr/bin/env bash
# Build the smda image without Docker and without a container registry, then (with --demo) run
# `smda demo` inside it. See "Building without Docker" in docker/README.md.
#
#   1. base:  debootstrap --variant=minbase a Debian trixie root filesystem (Python 3.13 from
#             python3 + python3-venv) and import it into buildah's storage as $BASE_TAG.
#             Cached: the image name carries the suite, a hash of the package list and the day.
#   2. image: buildah bud --isolation chroot -f docker/Dockerfile with PYTHON_IMAGE=<that base>;
#             the host's CA bundle is mounted read-only for pip (PIP_CERT), for a TLS proxy.
#   3. demo:  buildah run --isolation chroot <a container of the image> -- smda demo, with a
#             host folder as /data (--data DIR; default a fresh temporary folder).
#
# usage: docker/build-local.sh [--demo] [--data DIR] [--tag IMAGE]
# Prints "<step> seconds: N" for each step and "image size: ..." for the scripts and tests.
# Needs root (debootstrap, buildah's storage) and the Debian packages buildah and debootstrap
# (.ci/system-deps.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=trixie
MIRROR=${SMDA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates,passwd
TAG=localhost/smda:local
DEMO=0
DATA=
while [ $# -gt 0 ]; do
    case "$1" in
        --demo) DEMO=1 ;;
        --data) DATA=${2:?--data needs a folder}; shift ;;
        --tag) TAG=${2:?--tag needs an image name}; shift ;;
        *) echo "build-local: unknown option '$1' (valid: --demo, --data DIR, --tag IMAGE)" >&2; exit 2 ;;
    esac
    shift
done

for cmd in buildah debootstrap; do
    command -v "$cmd" >/dev/null || {
        echo "build-local: '$cmd' is missing; run .ci/system-deps.sh (as root)" >&2
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || { echo "build-local: run as root (debootstrap, buildah storage)" >&2; exit 1; }

# buildah's chroot isolation fails when it cannot set RLIMIT_NPROC; lowering it is allowed,
# raising it is not: use a limit below the machine's.
ulimit -u 32768

# The CA bundle pip uses on this machine (a TLS proxy may sit in front of the package index).
HOST_CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
[ -r "$HOST_CA" ] || { echo "build-local: CA bundle $HOST_CA not readable (set PIP_CERT)" >&2; exit 1; }

now() { date +%s; }

# ---- 1. the base image ---------------------------------------------------------------------
key=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$(date -u +%Y%m%d)" | sha256sum | cut -c1-12)
BASE_TAG=localhost/smda-base:$SUITE-$key
t0=$(now)
if buildah inspect --type image "$BASE_TAG" >/dev/null 2>&1; then
    echo "build-local: base $BASE_TAG (cached)"
else
    work=$(mktemp -d /var/tmp/smda-base.XXXXXX)
    trap 'rm -rf "$work"' EXIT
    echo "build-local: debootstrap $SUITE ($PACKAGES) from $MIRROR"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || {
        tail -20 "$work/debootstrap.log" >&2
        echo "build-local: debootstrap failed" >&2
        exit 1
    }
    # the Dockerfile runs apt-get update itself: no package cache or lists in the base
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
    ctr=$(buildah from --name "smda-base-$$" scratch)
    mnt=$(buildah mount "$ctr")
    tar -C "$work/rootfs" --numeric-owner -cf - . | tar -C "$mnt" --numeric-owner -xpf -
    buildah umount "$ctr" >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash "$ctr"
    buildah commit --quiet --rm "$ctr" "$BASE_TAG" >/dev/null
    rm -rf "$work"
    trap - EXIT
fi
echo "base seconds: $(($(now) - t0))"

# ---- 2. the image --------------------------------------------------------------------------
t0=$(now)
buildah bud --isolation chroot --layers --pull=never --format docker \
    --ignorefile docker/Dockerfile.dockerignore \
    --build-arg "PYTHON_IMAGE=$BASE_TAG" \
    --build-arg PIP_CERT=/etc/ssl/certs/host-ca.crt \
    --volume "$HOST_CA:/etc/ssl/certs/host-ca.crt:ro" \
    -f docker/Dockerfile -t "$TAG" .
echo "image seconds: $(($(now) - t0))"
echo "image size: $(buildah images --format '{{.Size}}' "$TAG" | head -1)"

# ---- 3. smda demo in the image -------------------------------------------------------------
[ "$DEMO" -eq 1 ] || exit 0
if [ -z "$DATA" ]; then
    DATA=$(mktemp -d /var/tmp/smda-demo-data.XXXXXX)
fi
mkdir -p "$DATA"
chown 1000:1000 "$DATA" # the image's user smda (uid 1000) writes /data
ctr=$(buildah from --pull=never --name "smda-demo-$$" "$TAG")
trap 'buildah rm "$ctr" >/dev/null' EXIT
# buildah 1.28 mounts an anonymous volume over the image's VOLUME /data even when --volume names
# the same path: drop the declaration in this working container so that DATA is /data.
buildah config --volume /data- "$ctr"
echo "image python: $(buildah run --isolation chroot "$ctr" -- python3 --version)"
t0=$(now)
buildah run --isolation chroot --volume "$DATA:/data" "$ctr" -- smda demo
echo "demo seconds: $(($(now) - t0))"
echo "demo data: $DATA"
