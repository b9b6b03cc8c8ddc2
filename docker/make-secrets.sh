#!/usr/bin/env bash
# Create the stack's Docker secrets (docker/compose.yaml, top-level `secrets:`) once:
#   bash docker/make-secrets.sh [FOLDER]        # FOLDER: docker/secrets by default
# Random passwords for Postgres, the Prefect API (user smda) and Grafana (user admin); an empty
# file for each provider credential, which smda treats as unset (the offline twin needs none).
# Existing files are kept: put your CDS key / Earthdata token in them (no trailing text).
# Compose mounts the files as they are: the folder is private (700), the files readable (644)
# by the containers' own users (postgres, smda, nobody, grafana).
set -euo pipefail
dir=${1:-"$(cd "$(dirname "$0")" && pwd)/secrets"}
mkdir -p "$dir"
chmod 700 "$dir"
for name in postgres_password prefect_api_password grafana_admin_password; do
    if [ ! -s "$dir/$name" ]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/$name")
    fi
done
for name in cdsapi_key earthdata_token earthdata_password; do
    [ -e "$dir/$name" ] || : > "$dir/$name"
done
chmod 644 "$dir"/postgres_password "$dir"/prefect_api_password "$dir"/grafana_admin_password \
    "$dir"/cdsapi_key "$dir"/earthdata_token "$dir"/earthdata_password
echo "secrets in $dir: $(cd "$dir" && ls | grep -v README | tr '\n' ' ')"
