"""Set up a Prefect server for smda: the work pool, the chain queue with its limit, the deployments.

    python deployments/setup.py [--prefect-file deployments/prefect.yaml] [--wait 180]

Run from the folder that holds ``flows/`` and ``deployments/`` (the repository root, or
``/opt/smda`` in the image): flow runs start in the directory the deployments were registered
from. It talks to ``PREFECT_API_URL`` with ``PREFECT_API_AUTH_STRING`` (both from the
environment; docker/compose.yaml runs it as the one-shot service ``setup`` through
``deployments/with_secrets.py``, which reads the auth string from a Docker secret).

Idempotent: a rerun finds the pool, sets the queue's limit again and re-registers the
deployments (``prefect deploy`` updates them). Steps:

1. wait until the API answers (``--wait`` seconds) and accepts the credentials;
2. the process work pool of ``prefect.yaml`` (created with the process worker's default job
   template if missing);
3. every work queue of ``prefect.yaml`` in that pool; ``smda-chain`` (the queue of the runs that
   write the state chain: daily and backfill) with a concurrency limit of 1, so they never
   overlap;
4. ``prefect --no-prompt deploy --all --prefect-file <file>``.

Independent of smda: it needs only Prefect and PyYAML. Exit status 0 when done, 1 with a
one-line reason otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

CHAIN_QUEUE = "smda-chain"
"""The queue of the state chain's writers; its limit of 1 is what this script guarantees."""
CHAIN_LIMIT = 1


class SetupError(Exception):
    """A step that cannot be done (the message is one line)."""


def work_queues(prefect_file: Path) -> tuple[str, list[str]]:
    """The (single) work pool of ``prefect_file``'s deployments and the queues they use."""
    data = yaml.safe_load(prefect_file.read_text("utf-8"))
    pools: set[str] = set()
    queues: list[str] = []
    for deployment in data.get("deployments") or []:
        pool = deployment.get("work_pool") or {}
        if not pool.get("name"):
            raise SetupError(f"{prefect_file}: deployment {deployment.get('name')} has no pool")
        pools.add(pool["name"])
        queue = pool.get("work_queue_name") or "default"
        if queue not in queues:
            queues.append(queue)
    if len(pools) != 1:
        raise SetupError(f"{prefect_file}: expected one work pool, found {sorted(pools)}")
    return pools.pop(), queues


def wait_for_api(client: Any, seconds: float) -> None:
    """Until the API answers its health check, then once with credentials (a work-pool read)."""
    from prefect.exceptions import PrefectHTTPStatusError

    deadline = time.monotonic() + seconds
    while True:
        error = client.api_healthcheck()
        if error is None:
            break
        if time.monotonic() > deadline:
            raise SetupError(f"the Prefect API does not answer after {seconds:.0f} s: {error}")
        time.sleep(2)
    try:
        client.read_work_pools(limit=1)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code == 401:
            raise SetupError(
                "the Prefect API refused the credentials: set PREFECT_API_AUTH_STRING to the "
                "server's PREFECT_SERVER_API_AUTH_STRING (docker/secrets/prefect_api_password)"
            ) from None
        raise


def ensure_pool(client: Any, name: str) -> str:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        template = ProcessWorker.get_default_base_job_template()
        client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template)
        )
        return f"work pool {name}: created (process)"
    if pool.type != "process":
        raise SetupError(f"work pool {name} exists with type {pool.type!r}, not 'process'")
    return f"work pool {name}: exists"


def ensure_queue(client: Any, pool: str, name: str, limit: int | None) -> str:
    from prefect.exceptions import ObjectNotFound

    try:
        queue = client.read_work_queue_by_name(name, work_pool_name=pool)
    except ObjectNotFound:
        client.create_work_queue(name, work_pool_name=pool, concurrency_limit=limit)
        return f"work queue {pool}/{name}: created (limit {limit})"
    if limit is not None and queue.concurrency_limit != limit:
        client.update_work_queue(queue.id, concurrency_limit=limit)
        return f"work queue {pool}/{name}: limit set to {limit} (was {queue.concurrency_limit})"
    return f"work queue {pool}/{name}: exists (limit {queue.concurrency_limit})"


def deploy(prefect_file: Path, root: Path) -> str:
    prefect = Path(sys.executable).with_name("prefect")
    command = [str(prefect if prefect.exists() else "prefect"), "--no-prompt", "deploy", "--all"]
    done = subprocess.run(
        [*command, "--prefect-file", str(prefect_file.relative_to(root))],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PREFECT_CLI_COLORS": "false"},
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        raise SetupError("prefect deploy failed: " + " | ".join(tail))
    names = sorted({w for w in done.stdout.split() if w.startswith("'smda-") and "/" in w})
    return "deployments registered: " + (", ".join(n.strip("'") for n in names) or "all")


def setup(prefect_file: Path, *, wait: float = 180.0, register: bool = True) -> list[str]:
    """Do the steps of the module docstring; the lines it reports."""
    from prefect.client.orchestration import get_client

    prefect_file = prefect_file.resolve()
    root = prefect_file.parent.parent
    pool, queues = work_queues(prefect_file)
    if CHAIN_QUEUE not in queues:
        raise SetupError(f"{prefect_file}: no deployment uses the queue {CHAIN_QUEUE}")
    report = []
    with get_client(sync_client=True) as client:
        wait_for_api(client, wait)
        report.append(ensure_pool(client, pool))
        for queue in queues:
            limit = CHAIN_LIMIT if queue == CHAIN_QUEUE else None
            report.append(ensure_queue(client, pool, queue, limit))
    if register:
        report.append(deploy(prefect_file, root))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefect-file", type=Path, default=Path("deployments/prefect.yaml"))
    parser.add_argument("--wait", type=float, default=180.0, help="seconds to wait for the API")
    parser.add_argument("--no-deploy", action="store_true", help="pool and queues only")
    args = parser.parse_args(argv)
    try:
        for line in setup(args.prefect_file, wait=args.wait, register=not args.no_deploy):
            print(f"setup: {line}", flush=True)
    except (SetupError, OSError, yaml.YAMLError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
