"""``smda verify``: every stored file of a region checked against what was recorded when it was
written, and repaired on request.

What is checked, and what ``--repair`` does about each finding:

=============  ==============================================  ================================
kind           checked against                                 repair
=============  ==============================================  ================================
``ledger``     the ledger parses                               rebuilt from the staged files'
                                                               own provenance attributes
``staged``     size and SHA-256 in the ledger record; a        removed, then staged again (raw
               staged file without a record                    cache, else downloaded)
``raw``        a cache file whose SHA-256 no ledger record     removed (downloaded again when
               of it names                                     needed)
``state``      sidecar parses; file size and SHA-256; it       recomputed from its inputs
               reads as a state; the next day's                (:func:`~smda.ops.days.repair_day`)
               ``state_before`` is its digest (hash chain);    or, for a broken link, the chain
               an uncommitted file (no sidecar)                re-run from there; the uncommitted
                                                               file removed
``published``  COG and item exist; the item's ``file:size``    published again from the state;
               and ``file:checksum``; the collection links     days without a state withdrawn
               exactly the chain's days
``model``      bundles hash to their version; the current      a corrupt compiled library
               pointer; compiled libraries match their record  removed (compiled on next use)
``orphan``     temporary files left by interrupted runs        removed
=============  ==============================================  ================================

Verifying takes the region's writer locks (:mod:`smda.storage.locks`): it sees no half-done
work of a running backfill, and repairs do not race one.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import xarray as xr

from smda.errors import MalformedFile, SmdaError
from smda.ops.days import backfill_days, repair_day
from smda.ops.fetch import fetch_span
from smda.ops.runtime import Runtime
from smda.storage.bundle_io import compiled_problem
from smda.storage.integrity import file_digest, multihash, note_repair
from smda.storage.iolock import HDF5_IO
from smda.storage.orphans import find_orphans
from smda.storage.registry import COMPILED
from smda.storage.store import RAW_ORPHAN_AGE, DayRecord

__all__ = ["Finding", "VerifyReport", "verify_region"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    """One thing wrong, and what ``--repair`` does (or did) about it."""

    kind: str
    target: str
    problem: str
    repair: str
    day: date | None = None
    source: str = ""

    def as_row(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "target": self.target,
            "problem": self.problem,
            "repair": self.repair,
        }


@dataclass
class VerifyReport:
    """What :func:`verify_region` found, what it repaired, and what is still wrong."""

    region: str
    checked: dict[str, int]
    found: list[Finding]
    repaired: list[Finding]
    remaining: list[Finding]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong (after the repairs, when repairing)."""
        return not self.remaining


# -- checks ---------------------------------------------------------------------------------------
def _ledgers(rt: Runtime, checked: dict[str, int]) -> list[Finding]:
    found = []
    for path in sorted(rt.store.ledger_dir.glob("*.json")):
        checked["ledger"] = checked.get("ledger", 0) + 1
        try:
            rt.store.ledger(path.stem)
        except MalformedFile as exc:
            found.append(
                Finding(
                    "ledger",
                    str(path),
                    str(exc),
                    "rebuild it from the staged files",
                    source=path.stem,
                )
            )
    return found


def _sources(rt: Runtime) -> list[str]:
    return sorted(p.stem for p in rt.store.ledger_dir.glob("*.json"))


def _staged(rt: Runtime, checked: dict[str, int], bad_ledgers: set[str]) -> list[Finding]:
    found = []
    staged_root = Path(rt.store.root) / "staged" / rt.region
    for source in _sources(rt):
        if source in bad_ledgers:
            continue
        ledger = rt.store.ledger(source)
        recorded = set()
        for day in ledger.days():
            checked["staged"] = checked.get("staged", 0) + 1
            recorded.add(rt.store.staged_path(source, day))
            problem = rt.store.problem(source, day)
            if problem == "not staged":
                problem = "the ledger records it but the file is missing"
            if problem is not None:
                found.append(
                    Finding(
                        "staged",
                        str(rt.store.staged_path(source, day)),
                        problem,
                        "remove it and stage it again",
                        day=day,
                        source=source,
                    )
                )
        for path in sorted((staged_root / source).glob("*/*.nc")):
            if path not in recorded:
                day = datetime.strptime(path.stem.rsplit("_", 1)[1], "%Y%m%d").date()
                found.append(
                    Finding(
                        "staged",
                        str(path),
                        "no ledger record (an interrupted staging)",
                        "remove it and stage it again",
                        day=day,
                        source=source,
                    )
                )
    return found


def _raw(rt: Runtime, checked: dict[str, int], bad_ledgers: set[str]) -> list[Finding]:
    """Raw cache files whose digest none of the records naming them has."""
    known: dict[Path, set[str]] = {}
    for source in _sources(rt):
        if source in bad_ledgers:
            continue
        for _, record in rt.store.iter_records(source):
            for f in record.files:
                path = Path(f.get("path", ""))
                path = path if path.is_absolute() else Path(rt.store.root) / path
                if f.get("sha256"):
                    known.setdefault(path, set()).add(str(f["sha256"]))
    found = []
    for path, digests in sorted(known.items()):
        got = file_digest(path)
        if got is None:
            continue  # a cache may be pruned: fetched again when needed
        checked["raw"] = checked.get("raw", 0) + 1
        if got[0] not in digests:
            found.append(
                Finding(
                    "raw",
                    str(path),
                    "its SHA-256 matches no record of it (corrupt)",
                    "remove it (downloaded again when needed)",
                )
            )
    return found


def _state(rt: Runtime, checked: dict[str, int]) -> list[Finding]:
    chain = rt.chain
    days = chain.days()
    found = []
    for day in days:
        checked["state"] = checked.get("state", 0) + 1
        problem = chain.problem(day)
        if problem is not None:
            found.append(
                Finding(
                    "state", chain.location(day), problem, "recompute it from its inputs", day=day
                )
            )
            continue
        before = day - timedelta(days=1)
        prov = chain.provenance(day)
        if prov.get("state_origin") == "chain" and "state_before" in prov:  # linked chains
            try:
                link_ok = chain.has(before) and prov.get("state_before") == chain.digest(before)
            except MalformedFile:
                continue  # reported as the corrupt day before
            if not link_ok:
                found.append(
                    Finding(
                        "state",
                        chain.location(day),
                        f"it was not stepped from the state of {before} now in the chain "
                        "(its state_before digest differs: a mixed chain)",
                        "re-run the chain from this day",
                        day=day,
                    )
                )
    if days:
        have = set(days)
        gaps = [d for d in _span(days[0], days[-1]) if d not in have]
        if gaps:
            found.append(
                Finding(
                    "state",
                    chain.url,
                    f"gap: {len(gaps)} day(s) missing from {gaps[0]}",
                    "re-run the chain from the gap",
                    day=gaps[0],
                )
            )
    if chain.is_local:
        for nc in sorted(Path(chain.root).glob("*/state_*.nc")):
            if not nc.with_suffix(".json").exists():
                found.append(Finding("state", str(nc), "uncommitted (no sidecar)", "remove it"))
    return found


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _published(rt: Runtime, checked: dict[str, int], bad_days: set[date]) -> list[Finding]:
    pub = rt.publisher
    chain_days = set(rt.chain.days())
    found = []
    for day in sorted(chain_days - bad_days):
        checked["published"] = checked.get("published", 0) + 1
        problem = _product_problem(rt, day)
        if problem is not None:
            found.append(
                Finding(
                    "published",
                    str(pub.cog_path(day)),
                    problem,
                    "publish it again from the state",
                    day=day,
                )
            )
    try:
        linked = set(pub.published_days())
    except (OSError, ValueError) as exc:
        found.append(
            Finding(
                "published",
                str(pub.collection_path),
                f"unreadable ({exc})",
                "publish the chain's days again",
            )
        )
        return found
    on_disk = {
        datetime.strptime(p.stem.rsplit("_", 1)[1], "%Y%m%d").date()
        for p in (pub.root / "cog").glob("*/smda_sm_*.tif")
    }
    for day in sorted((linked | on_disk) - chain_days):
        found.append(
            Finding(
                "published",
                str(pub.cog_path(day)),
                "published, but the day is not in the state chain",
                "withdraw it",
                day=day,
            )
        )
    for day in sorted(chain_days - linked - bad_days):
        if not any(f.day == day for f in found):
            found.append(
                Finding(
                    "published",
                    str(pub.collection_path),
                    f"the collection does not link {day}",
                    "publish it again from the state",
                    day=day,
                )
            )
    return found


def _product_problem(rt: Runtime, day: date) -> str | None:
    pub = rt.publisher
    cog, item_path = pub.cog_path(day), pub.item_path(day)
    if not cog.exists() or not item_path.exists():
        return "COG or STAC item missing"
    try:
        item = json.loads(item_path.read_text())
        asset: dict[str, Any] = item["assets"]["data"]
    except (OSError, ValueError, KeyError) as exc:
        return f"the STAC item is unreadable ({exc})"
    got = file_digest(cog)
    if got is None:
        return "COG missing"
    if "file:checksum" in asset:
        if asset.get("file:size") != got[1] or asset["file:checksum"] != multihash(got[0]):
            return "the COG's size or SHA-256 differs from its STAC item's file:checksum"
        return None
    try:  # items published before checksums were recorded: the COG must at least open
        import rasterio

        with rasterio.open(cog) as src:
            src.read(1, out_shape=(1, 1))
    except Exception as exc:  # any GDAL failure means an unreadable COG
        return f"GDAL cannot read the COG ({exc})"
    return None


def _models(rt: Runtime, checked: dict[str, int]) -> list[Finding]:
    registry = rt.registry
    found = []
    for version in registry.versions():
        checked["model"] = checked.get("model", 0) + 1
        try:
            registry.load(version)
        except SmdaError as exc:
            found.append(
                Finding(
                    "model",
                    str(registry.path(version)),
                    str(exc),
                    "none: train again or promote another version",
                )
            )
    try:
        registry.current_version()
    except MalformedFile as exc:
        found.append(
            Finding(
                "model",
                str(registry.root),
                str(exc),
                "none: promote a version again (`smda train`)",
            )
        )
    for lib in sorted((registry.root / COMPILED).glob("*.so")):
        checked["compiled"] = checked.get("compiled", 0) + 1
        problem = compiled_problem(lib)
        if problem is not None:
            found.append(
                Finding("model", str(lib), problem, "remove it (compiled again on next use)")
            )
    return found


def _orphans(rt: Runtime) -> list[Finding]:
    store_roots = [Path(rt.store.root) / "staged" / rt.region, rt.store.ledger_dir]
    chain_roots = [rt.registry.root, rt.publisher.root]
    if rt.chain.is_local:
        chain_roots.append(Path(rt.chain.root))
    paths = find_orphans([*store_roots, *chain_roots], older_than=time.time())
    paths += find_orphans([Path(rt.store.root) / "raw"], older_than=time.time() - RAW_ORPHAN_AGE)
    return [
        Finding("orphan", str(p), "temporary file left by an interrupted run", "remove it")
        for p in paths
    ]


def _check(rt: Runtime, checked: dict[str, int]) -> list[Finding]:
    ledgers = _ledgers(rt, checked)
    bad_ledgers = {f.source for f in ledgers}
    state = _state(rt, checked)
    bad_days = {f.day for f in state if f.day is not None}
    return [
        *ledgers,
        *_staged(rt, checked, bad_ledgers),
        *_raw(rt, checked, bad_ledgers),
        *state,
        *_published(rt, checked, bad_days),
        *_models(rt, checked),
        *_orphans(rt),
    ]


# -- repairs --------------------------------------------------------------------------------------
def _rebuild_ledger(rt: Runtime, source: str) -> None:
    """A ledger from the provenance each staged file carries (``smda_provenance``)."""
    path = rt.store.ledger_dir / f"{source}.json"
    path.rename(path.with_name(f"{path.name}.corrupt-{int(time.time())}"))
    ledger = rt.store.reopen_ledger(source)
    root = Path(rt.store.root)
    for nc in sorted((root / "staged" / rt.region / source).glob("*/*.nc")):
        try:
            with HDF5_IO, xr.open_dataset(nc) as ds:
                prov = json.loads(ds.attrs["smda_provenance"])
        except (OSError, ValueError, KeyError):
            nc.unlink()  # unreadable: staged again by the next fetch
            continue
        got = file_digest(nc)
        assert got is not None
        mtime = datetime.fromtimestamp(nc.stat().st_mtime, UTC).isoformat(timespec="seconds")
        ledger.put(
            DayRecord(
                day=prov["day"],
                staged=str(nc.relative_to(root)),
                sha256=got[0],
                files=prov.get("files", []),
                provisional=bool(prov.get("provisional", False)),
                staged_at=mtime,
                request=prov.get("request", {}),
                size=got[1],
            )
        )


def _repair(rt: Runtime, findings: list[Finding], say: Callable[[str], None]) -> list[Finding]:
    done: list[Finding] = []
    for f in (f for f in findings if f.kind == "ledger"):
        _rebuild_ledger(rt, f.source)
        note_repair("ledger", f"rebuilt {f.target} from the staged files")
        done.append(f)
    refetch: dict[str, list[date]] = {}
    for f in findings:
        if f.kind == "orphan":
            path = Path(f.target)
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        elif f.kind == "raw" or (f.kind == "model" and f.target.endswith(".so")):
            Path(f.target).unlink(missing_ok=True)
        elif f.kind == "staged" and f.day is not None:
            rt.store.discard(f.source, f.day)
            Path(f.target).unlink(missing_ok=True)
            refetch.setdefault(f.source, []).append(f.day)
        elif f.kind == "state" and f.target.endswith(".nc") and f.problem.startswith("uncommitted"):
            Path(f.target).unlink(missing_ok=True)
        else:
            continue
        note_repair(f.kind, f"{f.target}: {f.problem}")
        done.append(f)
    for source, days in refetch.items():
        say(f"staging {len(days)} day(s) of {source} again")
        for day in days:
            report = fetch_span(rt, source, day, day)
            if not report.ok:
                say(f"  {source} {day}: {report.outcomes[0].reason} (the next run fetches it)")
    done += _repair_chain(rt, findings, say)
    return done


def _repair_chain(
    rt: Runtime, findings: list[Finding], say: Callable[[str], None]
) -> list[Finding]:
    done: list[Finding] = []
    corrupt = sorted(
        {
            f.day
            for f in findings
            if f.kind == "state"
            and f.day
            and not f.problem.startswith(("gap", "it was not stepped"))
        }
    )
    for day in corrupt:
        try:
            repair_day(rt, day, why="found corrupt by smda verify")
        except SmdaError as exc:  # inputs gone: withdraw it and what follows; backfill redoes it
            say(f"cannot recompute {day} ({exc}); removing it and the later days")
            later = rt.chain.invalidate_after(day - timedelta(days=1))
            rt.publisher.unpublish(later)
        done += [f for f in findings if f.kind == "state" and f.day == day]
    relink = sorted(
        {
            f.day
            for f in findings
            if f.kind == "state" and f.day and f.problem.startswith(("gap", "it was not stepped"))
        }
    )
    last = rt.chain.last()
    if relink and last is not None:
        say(f"re-running the chain from {relink[0]} to {last}")
        backfill_days(rt, relink[0], last)
        done += [f for f in findings if f.kind == "state" and f.day in relink]
    withdrawn = [
        f.day
        for f in findings
        if f.kind == "published" and f.repair == "withdraw it" and f.day is not None
    ]
    if withdrawn:
        rt.publisher.unpublish(withdrawn)
    for f in findings:
        if f.kind != "published":
            continue
        if f.day is not None and f.repair != "withdraw it" and rt.chain.has(f.day):
            rt.publisher.publish(f.day, rt.chain.read(f.day), rt.chain.provenance(f.day))
        note_repair("published", f"{f.target}: {f.problem}")
        done.append(f)
    return done


def verify_region(
    rt: Runtime, *, repair: bool = False, say: Callable[[str], None] = LOG.info
) -> VerifyReport:
    """Check (and with ``repair`` fix) everything stored for the region (module docstring).

    Raises
    ------
    smda.storage.locks.RegionBusy
        Another process writes the region and did not finish within ``SMDA_LOCK_TIMEOUT``.
    """
    with rt.store_writer(sweep=False), rt.chain_writer(sweep=False):  # orphans are findings
        checked: dict[str, int] = {}
        found = _check(rt, checked)
        if not repair or not found:
            return VerifyReport(rt.region, checked, found, [], found)
        repaired = _repair(rt, found, say)
        remaining = _check(rt, {})
        return VerifyReport(rt.region, checked, found, repaired, remaining)
