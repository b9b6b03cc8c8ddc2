"""Running days from staged inputs: cold start, skip on rerun, invalidation, gaps, resume.

The store is staged straight from a tiny twin world (tests/staged_world.py) and a tiny model
is registered, so these tests exercise :mod:`smda.ops` without HTTP (the flows tests run
the same functions against the twin's replicas).
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from ops_runtime import LAST, RUN, digests, runtime_for
from staged_world import stage_world, twin_precip

from smda.errors import MissingInputs, NoModel
from smda.ops import (
    ChainGap,
    DailyPlan,
    Runtime,
    backfill_days,
    days_to_recompute,
    first_day_to_run,
    input_spans,
    report_metrics,
    run_day,
    stale_days,
    summary_markdown,
    validate_days,
)
from smda.storage.store import RawFile
from smda_twin.world import World


def test_first_day_cold_starts_then_chains_and_publishes(rt: Runtime) -> None:
    first = run_day(rt, RUN)
    assert first.status in ("analysis", "forecast_only")
    assert rt.chain.provenance(RUN)["state_origin"] == "cold start 3 d"
    second = run_day(rt, RUN + timedelta(days=1))
    assert rt.chain.provenance(RUN + timedelta(days=1))["state_origin"] == "chain"
    assert rt.chain.days() == [RUN, RUN + timedelta(days=1)]
    assert second.cog is not None and Path(second.cog).exists()
    assert Path(second.item or "").exists()
    analysis = rt.chain.state(RUN + timedelta(days=1)).values
    land = np.asarray(rt.chain.read(RUN)["flags"].values) > 0
    assert np.isfinite(analysis[land]).all() and np.isnan(analysis[~land]).all()
    assert ((analysis[land] >= 0) & (analysis[land] <= 1)).all()


def test_rerun_is_skipped_and_touches_nothing(rt: Runtime) -> None:
    backfill_days(rt, RUN, RUN + timedelta(days=2))
    before = digests(rt)
    again = backfill_days(rt, RUN, RUN + timedelta(days=2))
    assert [r.status for r in again] == ["skipped"] * 3
    assert digests(rt) == before


def test_resumed_backfill_equals_uninterrupted(
    rt: Runtime, template: Path, world: World, tmp_path: Path
) -> None:
    import shutil

    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    shutil.copytree(template, tmp_path / "other")
    other = runtime_for(tmp_path / "other", world)
    backfill_days(other, RUN, RUN + timedelta(days=2))  # "killed" after three days
    resumed = backfill_days(other, RUN, LAST)
    assert [r.status for r in resumed][:3] == ["skipped"] * 3
    assert digests(other) == whole


def test_forced_rerun_of_a_middle_day_invalidates_and_recomputes_later_days(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    middle = RUN + timedelta(days=2)
    rerun = run_day(rt, middle, force=True)
    assert rerun.invalidated == [middle + timedelta(days=i) for i in range(1, 4)]
    assert rt.chain.last() == middle
    assert not rt.publisher.cog_path(LAST).exists()
    backfill_days(rt, RUN, LAST)
    assert digests(rt) == whole


def test_forced_backfill_of_a_range_recomputes_the_days_it_invalidates(rt: Runtime) -> None:
    """As the backfill flow does: the days after the range that a forced re-run invalidated
    are recomputed, so the chain stays whole and published (:func:`days_to_recompute`)."""
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    first, last = RUN + timedelta(days=1), RUN + timedelta(days=2)
    runs = backfill_days(rt, first, last, force=True)
    assert [r.day for r in runs] == [
        first + timedelta(days=i) for i in range((LAST - first).days + 1)
    ]
    assert all(r.status != "skipped" for r in runs)
    assert rt.chain.last() == LAST and rt.publisher.cog_path(LAST).exists()
    assert digests(rt) == whole, "the same inputs and model give the same bytes"


def test_a_forced_block_without_mending_leaves_the_later_days_to_its_caller(rt: Runtime) -> None:
    """The backfill flow steps in blocks and mends once, after the last: a forced block whose
    re-run invalidates the days after it steps its own days only."""
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    first, last = RUN + timedelta(days=1), RUN + timedelta(days=2)
    runs = backfill_days(rt, first, last, force=True, mend=False)
    assert [r.day for r in runs] == [first, last]
    assert rt.chain.last() == last
    later = days_to_recompute(runs, last)
    assert later == [last + timedelta(days=i) for i in range(1, (LAST - last).days + 1)]
    backfill_days(rt, later[0], later[-1], mend=False)
    assert digests(rt) == whole


def test_a_day_after_a_gap_says_how_to_backfill(rt: Runtime) -> None:
    run_day(rt, RUN)
    with pytest.raises(ChainGap, match="smda backfill --start 2015-06-12"):
        run_day(rt, RUN + timedelta(days=3))


def test_missing_inputs_and_missing_model_are_clear(
    template: Path, world: World, tmp_path: Path
) -> None:
    rt = runtime_for(tmp_path / "empty", world)
    with pytest.raises(NoModel, match="smda train"):
        run_day(rt, RUN)
    import shutil

    shutil.copytree(template, tmp_path / "data")
    rt = runtime_for(tmp_path / "data", world)
    with pytest.raises(MissingInputs, match="era5"):
        run_day(rt, LAST + timedelta(days=1))
    assert rt.chain.days() == []


def test_a_crash_between_state_and_publishing_is_repaired_on_resume(rt: Runtime) -> None:
    run_day(rt, RUN)
    rt.publisher.unpublish([RUN])  # as if the process died after committing the state
    again = run_day(rt, RUN)
    assert again.status == "skipped"
    assert rt.publisher.cog_path(RUN).exists() and rt.publisher.item_path(RUN).exists()


def test_changed_inputs_make_days_stale(rt: Runtime, world: World) -> None:
    backfill_days(rt, RUN, RUN + timedelta(days=2))
    assert stale_days(rt) == []
    day = RUN + timedelta(days=1)  # its ERA5 re-staged as ERA5T (another version upstream)
    stage_world(rt.store, world, day, day, sources=("era5",), today=day, static=False)
    stale = stale_days(rt)
    assert stale and stale[0] == RUN + timedelta(days=1)


def _revise_mswep(rt: Runtime, world: World, day: date) -> None:
    """Stage ``day``'s MSWEP again as an NRT revision would arrive: other rain, another file
    version (what a daily run's fetch does to the provisional days of its antecedent window)."""
    rain = twin_precip(world, day, day).isel(time=0, drop=True) * 1.5
    name = f"{day:%Y%j}.nc"
    raw = RawFile(
        path=rt.store.root / "raw" / "mswep" / name,
        name=name,
        size=rain.nbytes,
        sha256=hashlib.sha256(np.ascontiguousarray(rain.values).tobytes()).hexdigest(),
        version='ETag="revision-2"',
        provisional=True,
    )
    rt.store.write_staged("mswep", day, rain.to_dataset(), [raw], request={"test": "revision"})


def test_the_daily_run_steps_from_a_day_its_own_fetch_made_stale(rt: Runtime, world: World) -> None:
    """Once the ready day's inputs are fetched, the daily run steps from the first analysed day
    whose inputs that fetch replaced — which its plan, made before the fetch, cannot know."""
    backfill_days(rt, RUN, RUN + timedelta(days=2))
    ready = RUN + timedelta(days=3)
    plan = DailyPlan(RUN + timedelta(days=2), [ready], {}, {})
    assert plan.reprocess_from is None
    assert first_day_to_run(rt, plan) == ready  # nothing changed: only the ready day

    revised = RUN + timedelta(days=1)
    _revise_mswep(rt, world, revised)

    assert first_day_to_run(rt, plan) == revised
    runs = backfill_days(rt, first_day_to_run(rt, plan), ready)
    assert [(r.day, r.status) for r in runs if r.status != "skipped"] == [
        (revised, "analysis"),
        (revised + timedelta(days=1), "analysis"),
        (ready, "analysis"),
    ]
    assert stale_days(rt) == []  # the chain holds no day made of replaced inputs
    after = DailyPlan(ready, [ready + timedelta(days=1)], {}, {})
    assert first_day_to_run(rt, after) == ready + timedelta(days=1)


def test_input_spans_cover_history_and_spin_up(rt: Runtime) -> None:
    spans = input_spans(rt, RUN, LAST)
    assert spans["era5"] == (RUN - timedelta(days=3), LAST)
    assert spans["mswep"][0] == RUN - timedelta(days=3 + 29)
    run_day(rt, RUN)
    assert input_spans(rt, RUN + timedelta(days=1), LAST)["era5"][0] == RUN + timedelta(days=1)


def test_validation_summary_and_metrics(rt: Runtime) -> None:
    runs = backfill_days(rt, RUN, RUN + timedelta(days=2))
    report = validate_days(rt, [r.day for r in runs])
    assert [row["day"] for row in report.rows()] == [str(r.day) for r in runs]
    assert all(row["n_obs"] == r.n_obs for row, r in zip(report.rows(), runs, strict=True))
    text = summary_markdown(runs)
    assert "| day |" in text and str(RUN) in text
    assert report_metrics(rt, "smda_backfill", runs, validation=report)
    prom = (rt.settings.data_dir / "metrics").glob("smda_backfill-*.prom")
    content = next(prom).read_text()
    assert "smda_run_days" in content and "smda_innovation_mean_m3m3" in content
