#!/usr/bin/env bash
# Install the Debian packages the test suite needs, when they are missing.
#
#   promtool  (package: prometheus)   checks monitoring/prometheus.yml and monitoring/alerts.yml
#                                     and runs the alert unit tests (monitoring/alerts_test.yml)
#   prometheus, prometheus-pushgateway, prometheus-alertmanager (with amtool)
#                                     the real monitoring stack the end-to-end alert tests start
#                                     on 127.0.0.1 (tests/flows/test_alerts_end_to_end.py)
#   buildah, debootstrap              build the image from docker/Dockerfile without Docker, on a
#                                     Debian base made by debootstrap, and run the demo in it
#                                     (docker/build-local.sh, tests/test_image.py). buildah pulls
#                                     uidmap and containers-common; as root it uses the kernel's
#                                     overlay driver and --isolation chroot, so neither
#                                     fuse-overlayfs nor an OCI runtime (runc/crun) is needed.
#
# Idempotent and silent when everything is already there. Needs root (or passwordless sudo)
# only when something has to be installed; otherwise it says what to install and exits 1.
# Services shipped by the packages are never started (a policy-rc.d denies it while installing).
set -euo pipefail

# command -> Debian package providing it
declare -A NEEDED=(
    [promtool]=prometheus
    [prometheus]=prometheus
    [prometheus-pushgateway]=prometheus-pushgateway
    [prometheus-alertmanager]=prometheus-alertmanager
    [amtool]=prometheus-alertmanager
    [buildah]=buildah
    [debootstrap]=debootstrap
)

missing=()
for cmd in "${!NEEDED[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEEDED[$cmd]}")
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "system-deps: missing Debian package(s): ${missing[*]}" >&2
    echo "system-deps: install them as root, then re-run the tests:" >&2
    echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: missing ${missing[*]} and this system has no apt-get;" \
        "install the package(s) providing: ${!NEEDED[*]}" >&2
    exit 1
fi

echo "system-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# Never start the packages' daemons (e.g. the Prometheus server) on a developer or CI machine.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    trap '"${SUDO[@]}" rm -f "$policy"' EXIT
fi

install() {
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# A stale or empty package list is the usual reason an install fails: refresh once and retry.
if ! install 2>/dev/null; then
    "${SUDO[@]}" apt-get update -qq >/dev/null
    install
fi

for cmd in "${!NEEDED[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "system-deps: ${NEEDED[$cmd]} installed but '$cmd' is still not on the PATH" >&2
        exit 1
    fi
done
echo "system-deps: done" >&2
