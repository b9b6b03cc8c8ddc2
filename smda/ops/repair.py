"""``smda verify --repair``: what is done about each finding of :mod:`smda.ops.verify`.

Files are removed and staged again (staged days, via the raw cache or a new download), removed
(raw cache entries, compiled libraries, temporary files, uncommitted state files), recomputed
(corrupt state days: :func:`smda.ops.days.repair_day`; a broken hash link or a gap: the chain
re-run from there), republished from the state (COGs, items) or withdrawn (products of days not
in the chain). Each repair is logged and counted (:func:`smda.storage.integrity.note_repair`).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from smda.errors import SmdaError
from smda.ops.days import backfill_days, repair_day
from smda.ops.fetch import fetch_span
from smda.ops.runtime import Runtime
from smda.ops.verify import Finding
from smda.storage.integrity import note_repair

__all__ = ["repair_findings"]


def repair_findings(
    rt: Runtime, findings: list[Finding], say: Callable[[str], None]
) -> list[Finding]:
    done: list[Finding] = []
    for f in (f for f in findings if f.kind == "ledger"):
        rt.store.rebuild_ledger(f.source)
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
