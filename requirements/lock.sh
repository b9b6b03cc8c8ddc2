#!/usr/bin/env bash
# Refresh the lock files from pyproject.toml (`make lock`; UV=<path of uv> or uv on the PATH).
#
#   requirements/dev.lock      runtime + the dev extra: what `make` and CI install
#   requirements/runtime.lock  runtime + the compiled extra: what the image installs; resolved
#                              with dev.lock as constraints, so both pin the same versions
#
# Exact versions with the hashes of every wheel and sdist, resolved once for every platform and
# for Python >= 3.12 (--universal: 3.12 for the venv, 3.13 for a Debian trixie image). uv keeps
# the versions already in a lock file unless pyproject.toml requires another; delete a lock file
# (or pass UV_LOCK_ARGS=--upgrade) to move everything to the newest releases. A lock file left
# with merge-conflict markers is accepted: the markers are dropped and both sides' pins serve as
# preferences. Each file is replaced only when its resolution succeeds.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
read -r -a extra <<<"${UV_LOCK_ARGS:-}"
common=(--universal --generate-hashes --python-version 3.12 --custom-compile-command "make lock"
    --quiet "${extra[@]}")

compile() { # compile <lock> <uv args...>: resolve into a sibling file, then replace the lock
    local lock=$1 tmp
    shift
    tmp=$(mktemp "$lock.XXXXXX")
    trap 'rm -f "$tmp"' RETURN
    if [ -f "$lock" ]; then
        sed '/^\(<<<<<<<\|=======\|>>>>>>>\|||||||| \)/d' "$lock" >"$tmp"
    fi
    "$UV" pip compile pyproject.toml "$@" "${common[@]}" -o "$tmp"
    chmod 644 "$tmp"
    mv "$tmp" "$lock"
}

compile requirements/dev.lock --extra dev
compile requirements/runtime.lock --extra compiled --constraint requirements/dev.lock
echo "lock: requirements/dev.lock ($(grep -c '^[A-Za-z0-9]' requirements/dev.lock) packages)," \
    "requirements/runtime.lock ($(grep -c '^[A-Za-z0-9]' requirements/runtime.lock) packages)"
