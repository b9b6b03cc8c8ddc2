"""Each source end to end against the offline twin, through the real clients."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from ingest_helpers import FAST, REGION, TODAY, context

from smda.config import Settings
from smda.geo.grid import BBox
from smda.ingest.context import make_context
from smda.ingest.fetch import fetch_range, source_status
from smda.ingest.sources.base import IngestContext
from smda_twin.service import Twin


def _staged(ctx: IngestContext, source: str, day: date) -> xr.Dataset:
    return ctx.store.open_staged(source, day)


def _no_partials(root: Path) -> None:
    leftovers = [
        p for p in root.rglob("*") if p.name.endswith(".part") or p.name.startswith("partial")
    ]
    assert not leftovers, leftovers


def test_era5_month_request_staged_as_daily_aggregates(twin: Twin, ctx: IngestContext) -> None:
    report = fetch_range(["era5"], date(2024, 7, 1), date(2024, 7, 3), ctx)
    assert [o.status for o in report.outcomes] == ["fetched"] * 3, report.outcomes
    assert twin.log.count("cds", method="POST", path="execution") == 1  # one request for the range
    ds = _staged(ctx, "era5", date(2024, 7, 2))
    assert ds.sizes == {"lat": 4, "lon": 4}
    assert {
        "t2m_mean",
        "t2m_min",
        "t2m_max",
        "d2m_mean",
        "ssrd_sum",
        "wind_mean",
        "sp_mean",
        "tp_sum",
    } <= set(ds.data_vars)
    assert np.all(ds.t2m_min <= ds.t2m_mean) and np.all(ds.t2m_mean <= ds.t2m_max)
    prov = json.loads(ds.attrs["smda_provenance"])
    assert prov["provisional"] is True and prov["files"][0]["version"] == "expver=0005"
    assert prov["files"][0]["sha256"] and prov["request"]["variable"]
    _no_partials(ctx.store.root)


def test_rerun_fetches_and_rewrites_nothing(twin: Twin, ctx: IngestContext, tmp_path: Path) -> None:
    days = (date(2024, 7, 10), date(2024, 7, 12))
    first = fetch_range(["era5", "mswep", "smap"], *days, ctx)
    assert not first.by_status("failed"), first.by_status("failed")
    staged = sorted((ctx.store.root / "staged").rglob("*.nc"))
    stamps = {p: p.stat().st_mtime_ns for p in staged}
    seen = len(twin.log.records())
    posts = twin.log.count(method="POST")
    second = fetch_range(["era5", "mswep", "smap"], *days, context(twin, ctx.store.root))
    assert {o.status for o in second.outcomes} == {"skipped"}
    downloads = [
        r
        for r in twin.log.records()[seen:]
        if r.method in ("GET", "POST") and "search" not in r.path and "catalogue" not in r.path
    ]
    assert twin.log.count(method="POST") == posts
    assert not [r for r in downloads if r.path.endswith((".nc", ".h5", ".zip"))], downloads
    assert {p: p.stat().st_mtime_ns for p in staged} == stamps


def test_mswep_revision_detected_and_recorded(twin: Twin, ctx: IngestContext) -> None:
    grid01 = (
        __import__("smda.geo.grid", fromlist=["Grid"])
        .Grid.global_grid(0.1)
        .subset(BBox(-100, 35, -99, 36))
    )
    # a day with rain in the region, so that a revision changes the values
    day = max(
        (date(2024, 7, 11) + timedelta(days=i) for i in range(9)),
        key=lambda d: float(twin.world.mswep_daily(d, grid01).sum()),
    )
    assert fetch_range(["mswep"], day, day, ctx).outcomes[0].status == "fetched"
    before = _staged(ctx, "mswep", day).precipitation.values
    twin.clock.advance(1)
    report = fetch_range(["mswep"], day, day, context(twin, ctx.store.root))
    assert report.outcomes[0].status == "replaced"
    after = _staged(ctx, "mswep", day).precipitation.values
    assert not np.array_equal(before, after, equal_nan=True)
    record = context(twin, ctx.store.root).store.ledger("mswep").get(day)
    assert record is not None and len(record.history) == 1 and record.provisional
    twin.clock.advance(15)  # out of the revision window: final
    late = context(twin, ctx.store.root)
    fetch_range(["mswep"], day, day, late)
    record = late.store.ledger("mswep").get(day)
    assert record is not None and not record.provisional
    gets = twin.log.count("mswep", method="GET")
    fetch_range(["mswep"], day, day, context(twin, ctx.store.root))
    assert twin.log.count("mswep", method="GET") == gets  # final days are never checked again


def test_era5t_replaced_by_final(twin: Twin, ctx: IngestContext) -> None:
    day = date(2024, 7, 1)
    fetch_range(["era5"], day, day, ctx)
    assert ctx.store.ledger("era5").get(day).provisional  # type: ignore[union-attr]
    twin.clock.set(
        date(2024, 9, 15)
    )  # ERA5T for days younger than 60 days: 2024-07-01 is final now
    later = context(twin, ctx.store.root)
    report = fetch_range(["era5"], day, day, later)
    assert report.outcomes[0].status == "replaced", report.outcomes
    record = later.store.ledger("era5").get(day)
    assert record is not None and not record.provisional
    assert record.history and record.history[-1]["previous_provisional"] is True
    assert _staged(later, "era5", day).attrs["expver"] == "0001"


def test_smap_binned_with_counts(twin: Twin, ctx: IngestContext) -> None:
    days = (date(2024, 7, 1), date(2024, 7, 6))
    report = fetch_range(["smap"], *days, ctx)
    fetched = report.by_status("fetched")
    assert len(fetched) == 6
    counts = [int(_staged(ctx, "smap", o.day)["count"].sum()) for o in fetched]
    assert sum(counts) > 0  # a 2–3-day revisit: some days see the region
    ds = _staged(ctx, "smap", fetched[0].day)
    sm = ds.soil_moisture.values
    assert np.all((sm[np.isfinite(sm)] >= 0.02) & (sm[np.isfinite(sm)] <= 0.6))
    assert np.all(np.isnan(sm[ds["count"].values == 0]))


def test_label_products_era5land_and_gldas(twin: Twin, ctx: IngestContext) -> None:
    twin.clock.set(date(2024, 9, 1))  # GLDAS publishes 45 days late
    later = context(twin, ctx.store.root)
    day = date(2024, 7, 5)
    report = fetch_range(["era5land", "gldas"], day, day, later)
    assert [o.status for o in report.outcomes] == ["fetched", "fetched"], report.outcomes
    land = _staged(later, "era5land", day)
    gldas = _staged(later, "gldas", day)
    for ds in (land, gldas):
        values = next(iter(ds.data_vars.values())).values
        assert values.shape == (4, 4) and np.nanmin(values) > 0 and np.nanmax(values) < 0.7


def test_not_yet_available_is_normal(twin: Twin, ctx: IngestContext) -> None:
    report = fetch_range(["era5", "smap", "mswep"], date(2024, 7, 14), date(2024, 7, 22), ctx)
    era5 = {o.day: o.status for o in report.outcomes if o.source == "era5"}
    assert era5[date(2024, 7, 15)] == "fetched" and era5[date(2024, 7, 16)] == "not_available"
    smap = {o.day: o.status for o in report.outcomes if o.source == "smap"}
    assert smap[date(2024, 7, 18)] == "fetched" and smap[date(2024, 7, 19)] == "not_available"
    mswep = {o.day: o.status for o in report.outcomes if o.source == "mswep"}
    assert mswep[date(2024, 7, 20)] == "fetched" and mswep[date(2024, 7, 21)] == "not_available"
    assert report.ok


def test_region_across_the_antimeridian(tmp_path: Path) -> None:
    from smda_twin.service import Twin, TwinConfig
    from smda_twin.world import WorldSpec

    region = BBox(179, -17, -179, -16)  # Fiji
    config = TwinConfig(
        world=WorldSpec(seed=5, region=BBox(178, -18, -178, -15), epoch=date(2024, 6, 1)),
        today=date(2024, 7, 20),
    )
    with Twin(config, tmp_path / "twin") as twin:
        ctx = context(twin, tmp_path / "data", region=region)
        report = fetch_range(["era5", "mswep", "smap"], date(2024, 7, 1), date(2024, 7, 3), ctx)
        assert not report.by_status("failed"), report.by_status("failed")
        era5 = ctx.store.open_staged("era5", date(2024, 7, 1))
        assert era5.sizes == {"lat": 4, "lon": 8}
        np.testing.assert_allclose(era5.lon.values[[3, 4]], [179.875, -179.875])
        assert np.isfinite(era5.t2m_mean.values).all()
        mswep = ctx.store.open_staged("mswep", date(2024, 7, 1))
        assert np.isfinite(mswep.precipitation.values).all()


def test_status_shows_provider_and_store(twin: Twin, ctx: IngestContext) -> None:
    fetch_range(["era5"], date(2024, 7, 1), date(2024, 7, 2), ctx)
    fetch_range(["era5"], date(2024, 7, 5), date(2024, 7, 5), ctx)
    [era5] = source_status(["era5"], ctx)
    assert era5.provider_newest == date(2024, 7, 15)
    assert era5.staged_count == 3 and era5.staged_last == date(2024, 7, 5)
    assert era5.gaps == [(date(2024, 7, 3), date(2024, 7, 4))]
    assert era5.behind == 10 and era5.provisional == 3


def test_secrets_never_logged_or_stored(
    twin: Twin, ctx: IngestContext, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    twin.add_fault(
        "cds",
        __import__("smda_twin.faults", fromlist=["Fault"]).Fault(
            "status", path="execution", status=503
        ),
    )
    fetch_range(["era5", "smap"], date(2024, 7, 1), date(2024, 7, 1), ctx)
    secrets = [twin.cds.key, twin.earthdata.token, twin.earthdata.password]
    text = caplog.text
    for path in ctx.store.root.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".nc"):
            text += path.read_bytes().decode("latin-1")
    for secret in secrets:
        assert secret not in text
    _ = timedelta


def test_credentials_in_the_mswep_url_are_used_but_never_stored_or_shown(
    twin: Twin, tmp_path: Path
) -> None:
    template = twin.endpoints().mswep.url_template
    scheme, rest = template.split("://", 1)
    secret = f"{scheme}://ana:s3cret-pw@{rest}"  # an authenticated mirror, the usual way
    ctx = make_context(
        Settings(data_dir=tmp_path / "data", mswep_url=secret),
        region=REGION,
        endpoints=None,
        policy=FAST,
        today=TODAY,
    )
    day = TODAY - timedelta(days=3)

    report = fetch_range(["mswep"], day, day, ctx)

    assert report.outcomes[0].status == "fetched", report.outcomes
    stored = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert stored and not any(b"s3cret-pw" in p.read_bytes() for p in stored)
    assert any(b"ana:***@" in p.read_bytes() for p in stored)  # where it came from, redacted
