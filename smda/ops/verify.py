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

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from smda.errors import MalformedFile, SmdaError
from smda.ops.days import broken_link
from smda.ops.runtime import Runtime
from smda.storage.bundle_io import compiled_problem
from smda.storage.integrity import file_digest
from smda.storage.orphans import find_orphans
from smda.storage.registry import COMPILED
from smda.storage.store import RAW_ORPHAN_AGE

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
        if broken_link(rt, day):
            found.append(
                Finding(
                    "state",
                    chain.location(day),
                    f"it was not stepped from the state of {day - timedelta(days=1)} now in the "
                    "chain (a cold start, or another state_before digest: a mixed chain)",
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
        problem = pub.problem(day)
        if problem is not None:
            found.append(
                Finding(
                    "published",
                    pub.location(pub.cog_path(day)),
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
                pub.location(pub.collection_path),
                f"unreadable ({exc})",
                "publish the chain's days again",
            )
        )
        return found
    on_disk = set(pub.days_on_disk())
    for day in sorted((linked | on_disk) - chain_days):
        found.append(
            Finding(
                "published",
                pub.location(pub.cog_path(day)),
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
                    pub.location(pub.collection_path),
                    f"the collection does not link {day}",
                    "publish it again from the state",
                    day=day,
                )
            )
    return found


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
    now = time.time()
    paths = find_orphans([*rt.store.private_dirs, *rt.chain_dirs], older_than=now)
    paths += find_orphans([rt.store.raw_root], older_than=now - RAW_ORPHAN_AGE)
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
        from smda.ops.repair import repair_findings  # repairs need the day runner

        repaired = repair_findings(rt, found, say)
        remaining = _check(rt, {})
        return VerifyReport(rt.region, checked, found, repaired, remaining)
