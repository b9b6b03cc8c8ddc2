"""Every fault the twin injects, through ingest: the right retry or error, and no data lost."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from ingest_helpers import FAST, context

from smda.ingest.fetch import fetch_range
from smda.ingest.sources.base import IngestContext
from smda_twin.faults import Fault
from smda_twin.service import Twin

DAY = date(2024, 7, 10)


def _snapshot(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (root / "staged").rglob("*.nc")}


def _clean(root: Path) -> None:
    leftovers = [
        p for p in root.rglob("*") if p.name.endswith(".part") or p.name.startswith("partial")
    ]
    assert not leftovers, leftovers


def _stage_before(ctx: IngestContext, sources: list[str]) -> dict[Path, bytes]:
    """A day staged before the faults: it must come out untouched."""
    report = fetch_range(sources, date(2024, 7, 1), date(2024, 7, 1), ctx)
    assert report.ok, report.outcomes
    return _snapshot(ctx.store.root)


@pytest.fixture
def staged_before(ctx: IngestContext) -> dict[Path, bytes]:
    return _stage_before(ctx, ["era5", "mswep"])


def _assert_intact(ctx: IngestContext, before: dict[Path, bytes]) -> None:
    after = _snapshot(ctx.store.root)
    for path, content in before.items():
        assert after[path] == content, f"{path} changed"
    _clean(ctx.store.root)


@pytest.mark.parametrize(
    ("provider", "source", "fault"),
    [
        ("cds", "era5", Fault("status", path="execution", status=503, times=2)),
        ("cds", "era5", Fault("status", path="/download/", status=502)),
        ("cds", "era5", Fault("reset", path="/jobs/")),
        ("cds", "era5", Fault("truncate", path="/download/")),
        ("cds", "era5", Fault("corrupt", path="/download/", times=2)),
        ("cds", "era5", Fault("job_failed", path="execution")),
        ("mswep", "mswep", Fault("status", path=".nc", method="GET", status=500, times=2)),
        ("mswep", "mswep", Fault("reset", path=".nc", method="GET")),
        ("mswep", "mswep", Fault("truncate", path=".nc")),
        ("mswep", "mswep", Fault("corrupt", path=".nc")),
        ("mswep", "mswep", Fault("slow", path=".nc", method="GET", delay=3.0)),
        ("earthdata", "smap", Fault("status", path="granules", status=503)),
        ("earthdata", "smap", Fault("reset", path=".h5")),
        ("earthdata", "smap", Fault("truncate", path=".h5")),
        ("earthdata", "smap", Fault("corrupt", path=".h5")),
    ],
    ids=lambda v: v if isinstance(v, str) else f"{v.kind}-{v.status}-{v.path}",
)
def test_transient_faults_are_retried(
    twin: Twin,
    ctx: IngestContext,
    staged_before: dict[Path, bytes],
    provider: str,
    source: str,
    fault: Fault,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fault.kind == "slow":
        monkeypatch.setattr("smda.ingest.sources.mswep._TIMEOUT", 1)
    twin.add_fault(provider, fault)
    report = fetch_range([source], DAY, DAY, context(twin, ctx.store.root))
    assert [o.status for o in report.outcomes] == ["fetched"], report.outcomes
    assert fault.fired >= 1
    _assert_intact(ctx, staged_before)


def test_retry_after_is_honoured(twin: Twin, ctx: IngestContext) -> None:
    twin.add_fault("mswep", Fault("status", path=".nc", method="GET", status=429, retry_after=1.5))
    start = time.monotonic()
    report = fetch_range(["mswep"], DAY, DAY, ctx)
    assert report.ok and time.monotonic() - start >= 1.5


def test_persistent_outage_fails_with_reason_then_next_run_succeeds(
    twin: Twin, ctx: IngestContext, staged_before: dict[Path, bytes]
) -> None:
    twin.add_fault("mswep", Fault("status", path=".nc", method="GET", status=503, times=-1))
    report = fetch_range(["mswep"], DAY, DAY, context(twin, ctx.store.root))
    [outcome] = report.outcomes
    assert outcome.status == "failed" and "503" in outcome.reason and "next run" in outcome.reason
    _assert_intact(ctx, staged_before)
    twin.faults["mswep"].clear()
    assert (
        fetch_range(["mswep"], DAY, DAY, context(twin, ctx.store.root)).outcomes[0].status
        == "fetched"
    )


def test_licence_not_accepted_fails_fast(
    twin: Twin, ctx: IngestContext, staged_before: dict[Path, bytes]
) -> None:
    accepted = twin.log.count("cds", method="POST", path="execution", status=201)
    twin.add_fault("cds", Fault("licence", path="execution", times=-1))
    report = fetch_range(
        ["era5"], date(2024, 6, 20), date(2024, 7, 10), context(twin, ctx.store.root)
    )
    failed = report.by_status("failed")
    assert failed and all("licence" in o.reason and "accept" in o.reason for o in failed)
    # at most one refusal per request already under way (two month-sized requests), none retried
    assert twin.log.count("cds", method="POST", status=403) <= 2
    assert twin.log.count("cds", method="POST", path="execution", status=201) == accepted
    _assert_intact(ctx, staged_before)


def test_eula_not_accepted_fails_fast(twin: Twin, ctx: IngestContext) -> None:
    twin.add_fault("earthdata", Fault("eula", path=".h5", times=-1))
    report = fetch_range(["smap"], DAY, DAY, ctx)
    [outcome] = report.outcomes
    assert outcome.status == "failed" and "EULA" in outcome.reason
    assert twin.log.count("earthdata", path=r"\.h5$", status=403) == 1


def test_bad_cds_key_fails_fast(twin: Twin, tmp_path: Path) -> None:
    from dataclasses import replace

    endpoints = twin.endpoints()
    bad = replace(endpoints, cds=replace(endpoints.cds, key="00000000-0000-0000-0000-000000000000"))
    from ingest_helpers import FAST

    from smda.config import Settings
    from smda.ingest.context import make_context

    ctx = make_context(Settings(data_dir=tmp_path / "d"), region=None, endpoints=bad, policy=FAST)
    report = fetch_range(["era5"], DAY, DAY, ctx)
    [outcome] = report.outcomes
    assert outcome.status == "failed" and "credentials" in outcome.reason
    assert twin.log.count("cds", status=401) == 1


def test_queued_job_past_deadline_is_resumed_not_resubmitted(
    twin: Twin, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smda.ingest.sources.cds as cds_mod

    original = cds_mod.retrieve
    monkeypatch.setattr(
        "smda.ingest.sources.era5.retrieve", lambda *a, **k: original(*a, **{**k, "deadline": 0.5})
    )
    twin.add_fault("cds", Fault("queue", path="execution", polls=50))
    report = fetch_range(["era5"], DAY, DAY, context(twin, ctx.store.root))
    assert report.outcomes[0].status == "failed" and "still queued" in report.outcomes[0].reason
    submitted = twin.log.count("cds", method="POST", path="execution")
    assert submitted == 1
    monkeypatch.setattr("smda.ingest.sources.era5.retrieve", original)
    for job in twin.cds._jobs.values():  # the queue moves on
        job.queue_polls = 1
    report = fetch_range(["era5"], DAY, DAY, context(twin, ctx.store.root))
    assert report.outcomes[0].status == "fetched"
    assert twin.log.count("cds", method="POST", path="execution") == submitted  # resumed


def test_crash_while_staging_leaves_nothing_half_written(
    twin: Twin, ctx: IngestContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smda.storage.store as store_mod

    real = store_mod.Store.write_staged
    calls = {"n": 0}

    def crash_on_second(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(28, "No space left on device")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(store_mod.Store, "write_staged", crash_on_second)
    report = fetch_range(["era5"], date(2024, 7, 1), date(2024, 7, 3), ctx)
    statuses = [o.status for o in report.outcomes]
    assert statuses.count("failed") == 1 and "No space left" in report.by_status("failed")[0].reason
    _clean(ctx.store.root)
    monkeypatch.setattr(store_mod.Store, "write_staged", real)
    posts = twin.log.count("cds", method="POST")
    again = fetch_range(["era5"], date(2024, 7, 1), date(2024, 7, 3), context(twin, ctx.store.root))
    assert sorted(o.status for o in again.outcomes) == ["fetched", "skipped", "skipped"]
    assert twin.log.count("cds", method="POST") == posts  # resumed from the raw cache


def _job_map(ctx: IngestContext) -> dict[str, str]:
    path = ctx.store.raw_dir("era5") / ".cds-jobs.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_a_result_corrupt_on_every_download_is_a_provider_fault(
    twin: Twin, ctx: IngestContext, staged_before: dict[Path, bytes]
) -> None:
    posts = twin.log.count("cds", method="POST", path="execution")
    downloads = twin.log.count("cds", method="GET", path="/download/")
    raw_before = sorted(p.name for p in ctx.store.raw_dir("era5").iterdir())
    twin.add_fault("cds", Fault("corrupt", path="/download/", times=-1))

    [outcome] = fetch_range(["era5"], DAY, DAY, context(twin, ctx.store.root)).outcomes

    assert outcome.status == "failed"
    assert (
        "era5:2024-07-10" in outcome.reason
        and "result for this request is corrupt" in outcome.reason
    )
    assert "report" in outcome.reason and "support.ecmwf.int" in outcome.reason
    # each job's result downloaded per the policy, then the request submitted once more
    assert twin.log.count("cds", method="POST", path="execution") == posts + 2
    assert twin.log.count("cds", method="GET", path="/download/") == downloads + 2 * FAST.attempts
    # nothing partial kept: no raw file, no job to resume, nothing staged for the day
    assert sorted(p.name for p in ctx.store.raw_dir("era5").iterdir()) == raw_before
    assert _job_map(ctx) == {}
    assert ctx.store.ledger("era5").get(DAY) is None
    _assert_intact(ctx, staged_before)

    twin.faults["cds"].clear()  # the provider repaired: the next run starts with a new job
    report = fetch_range(["era5"], DAY, DAY, context(twin, ctx.store.root))
    assert [o.status for o in report.outcomes] == ["fetched"]
    assert twin.log.count("cds", method="POST", path="execution") == posts + 3


def test_a_job_whose_result_stays_corrupt_is_replaced_by_a_new_job(
    twin: Twin, ctx: IngestContext
) -> None:
    twin.add_fault("cds", Fault("corrupt", path="/download/", times=FAST.attempts))

    report = fetch_range(["era5"], DAY, DAY, ctx)

    assert [o.status for o in report.outcomes] == ["fetched"], report.outcomes
    assert twin.log.count("cds", method="POST", path="execution") == 2
    assert _job_map(ctx) == {}
