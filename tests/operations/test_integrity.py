"""The state chain under corruption: the D−1 digest links days, corrupt days are recomputed
byte-identical, a forced re-run withdraws nothing it cannot redo, and ``smda verify`` finds and
repairs every kind of damage."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from ops_runtime import LAST, RUN, digests, runtime_for

from smda.ops import Runtime, backfill_days, run_day
from smda.ops.verify import verify_region
from smda.storage.bundle_io import compiled_problem
from smda.storage.cog import FLAGS_COG
from smda.storage.integrity import CorruptFile, repairs
from smda.storage.registry import COMPILED
from smda_twin.world import World


def _truncate(path: Path, size: int = 3000) -> None:
    with path.open("r+b") as fh:
        fh.truncate(size)


def _replace_truncated(path: Path, size: int = 100) -> None:
    """A truncated copy in place of ``path`` (a new file, as a later process would find it: a
    library this process has loaded must not be truncated under it)."""
    tmp = path.with_name("truncated.tmp")
    tmp.write_bytes(path.read_bytes()[:size])
    tmp.replace(path)


def test_each_day_names_the_digest_of_the_state_it_was_stepped_from(rt: Runtime) -> None:
    backfill_days(rt, RUN, RUN + timedelta(days=2))
    assert rt.chain.provenance(RUN)["state_before"] is None  # a cold start
    for day in (RUN + timedelta(days=1), RUN + timedelta(days=2)):
        prov = rt.chain.provenance(day)
        assert prov["state_before"] == rt.chain.digest(day - timedelta(days=1))


def test_a_corrupt_state_is_recomputed_byte_identical(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    middle = RUN + timedelta(days=2)
    state = Path(rt.chain.location(middle))
    _truncate(state)
    before = repairs().get("state", 0)
    run_day(rt, middle + timedelta(days=1), force=True)  # steps from the corrupt day
    assert repairs()["state"] == before + 1
    assert (
        digests(rt)[f"{state.parent.name}/{state.name}"]
        == whole[f"{state.parent.name}/{state.name}"]
    )
    backfill_days(rt, RUN, LAST)  # the days the forced re-run invalidated
    assert digests(rt) == whole


def test_a_forced_backfill_with_a_corrupt_input_withdraws_nothing(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    _truncate(rt.store.staged_path("era5", LAST - timedelta(days=1)), 5000)
    with pytest.raises(CorruptFile, match="smda verify --repair"):
        backfill_days(rt, RUN, LAST, force=True)
    assert digests(rt) == whole
    assert rt.publisher.published_days() == rt.chain.days()


def test_verify_is_clean_on_a_fresh_chain(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    report = verify_region(rt)
    assert report.ok, report.remaining
    assert report.checked["state"] == 6 and report.checked["published"] == 6
    assert report.checked["staged"] > 0


def test_verify_finds_and_repairs_every_kind_of_damage(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    d2, d3, d4 = (RUN + timedelta(days=n) for n in (2, 3, 4))
    _truncate(Path(rt.chain.location(d2)))  # a state file
    _truncate(rt.publisher.cog_path(d4))  # a COG of analysis and uncertainty
    rt.publisher.cog_path(d3, FLAGS_COG).unlink()  # a COG of flags and observation count
    rt.publisher.item_path(RUN).unlink()  # an item
    orphan = rt.publisher.cog_path(LAST).with_name(".smda_sm_x.tif.abc123.part")
    orphan.write_bytes(b"half")
    libs = sorted((rt.registry.root / COMPILED).glob("*.so"))
    for lib in libs:
        _replace_truncated(lib)
    stray = Path(rt.chain.location(LAST + timedelta(days=3)))  # an uncommitted state file
    stray.write_bytes(b"x")

    found = verify_region(rt)
    assert not found.ok
    kinds = {(f.kind, f.day) for f in found.found}
    assert {("state", d2), ("published", d3), ("published", d4), ("published", RUN)} <= kinds
    problems = {f.day: f.problem for f in found.found if f.kind == "published"}
    assert problems[d3] == "smda_sm_20150614_flags.tif missing"
    assert "smda_sm_20150615.tif differs from its STAC asset's file:checksum" in problems[d4]
    assert {"orphan", "model"} <= {f.kind for f in found.found} or not libs
    assert any(f.target == str(stray) for f in found.found)

    repaired = verify_region(rt, repair=True)
    assert repaired.ok, repaired.remaining
    assert verify_region(rt).ok
    assert not orphan.exists() and not stray.exists()
    assert digests(rt) == whole


def test_verify_reports_a_mixed_chain_and_repair_relinks_it(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    whole = digests(rt)
    day = RUN + timedelta(days=3)
    sidecar = Path(rt.chain.location(day)).with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data["provenance"]["state_before"] = "0" * 64  # stepped from another writer's D−1
    sidecar.write_text(json.dumps(data, indent=1, sort_keys=True))
    found = verify_region(rt)
    assert [f.day for f in found.found if f.kind == "state"] == [day]
    assert "state_before" in found.found[0].problem
    assert verify_region(rt, repair=True).ok
    assert digests(rt) == whole


def test_a_truncated_compiled_predictor_is_rebuilt_before_it_is_loaded(
    rt: Runtime, template: Path, world: World
) -> None:
    run_day(rt, RUN)
    libs = sorted((rt.registry.root / COMPILED).glob("*.so"))
    assert libs, "tl2cgen (a dependency) compiled the model"
    _replace_truncated(libs[0])
    before = repairs().get("compiled", 0)
    fresh = runtime_for(rt.settings.data_dir, world)  # as the next process
    again = run_day(fresh, RUN + timedelta(days=1))  # would die of SIGBUS on the truncated one
    assert again.status != "skipped"
    assert repairs()["compiled"] == before + 1
    assert compiled_problem(libs[0]) is None


def test_a_backfill_before_a_cold_started_day_relinks_the_chain(
    rt: Runtime, template: Path, world: World, tmp_path: Path
) -> None:
    """A daily run cold-started the chain at a later day (the backfill was not done yet);
    backfilling the days before it recomputes it from them, and what follows."""
    import shutil

    later = RUN + timedelta(days=3)
    run_day(rt, later)
    run_day(rt, later + timedelta(days=1))
    assert rt.chain.provenance(later)["state_before"] is None
    found = verify_region(rt)
    assert found.ok  # a chain that starts cold is whole
    runs = backfill_days(rt, RUN, later - timedelta(days=1))
    assert [r.day for r in runs][-2:] == [later, later + timedelta(days=1)]
    shutil.copytree(template, tmp_path / "clean")
    clean = runtime_for(tmp_path / "clean", world)
    backfill_days(clean, RUN, later + timedelta(days=1))
    assert digests(rt) == digests(clean)


def test_an_unreadable_sidecar_is_repaired_by_the_next_run(rt: Runtime) -> None:
    backfill_days(rt, RUN, RUN + timedelta(days=2))
    whole = digests(rt)
    day = RUN + timedelta(days=2)
    Path(rt.chain.location(day)).with_suffix(".json").write_text("{not json")
    run = run_day(rt, day + timedelta(days=1))  # names the digest of its D−1: repaired first
    assert run.status != "skipped"
    now = digests(rt)
    assert {k: now[k] for k in whole if "collection" not in k} == {
        k: v for k, v in whole.items() if "collection" not in k
    }


def test_a_run_removes_temporary_files_left_by_a_killed_one(rt: Runtime) -> None:
    old = rt.publisher.root / "cog" / "2015" / ".smda_sm_20150611.tif.k1ll3d.part"
    young = rt.store.root / "staged" / rt.region / "era5" / "2015" / ".era5_x.nc.y0ung.part"
    for path in (old, young):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a file")
    os.utime(old, (0, 0))  # before this process started: an earlier run's
    before = repairs().get("orphan", 0)
    run_day(rt, RUN)
    assert not old.exists()
    assert young.exists(), "a temporary file younger than the run may be another thread's"
    assert repairs()["orphan"] == before + 1
