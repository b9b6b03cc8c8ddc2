"""Operations: the daily cycle, backfills, validation and training as users run them.

The CLI (``smda run``, ``smda backfill``, ``smda train``) and the Prefect flows (``flows/``) call
the same functions here; the flows only add retries, concurrency, artifacts and scheduling.

The daily cycle (ARCHITECTURE.md) for one region:

1. :func:`plan_daily` polls each operational source and picks every day after the last
   completed analysis whose *required* inputs (ERA5 and MSWEP of the day) are available at the
   providers. SMAP is optional: a day without it is a forecast-only day, not a failure.
2. :func:`fetch_days` fetches and stages those days' inputs (plus MSWEP's antecedent window and,
   for a cold start, the spin-up days).
3. :func:`run_day` steps the model from the state of D−1 (the analysis in the state chain),
   nudges toward SMAP, persists the analysis with its provenance and publishes COG + STAC.

A day whose state already exists with the same provenance (model version, input versions, gain,
code version) is skipped: reruns are idempotent and a crashed backfill resumes where it stopped.
A day re-run with other inputs (a provisional input became final, a new model) replaces its
state and invalidates the later days of the chain, which :func:`backfill_days` recomputes.

An empty chain starts cold: the model climatology of the day before the spin-up window, cycled
(with nudging) through ``spinup_days`` days whose results are not stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np

from smda import __version__
from smda.bundle import ModelBundle, Predict
from smda.chain import StateChain
from smda.config import Settings, load_settings
from smda.cycle import FLAG_ASSIMILATED, FLAG_LAND, CycleResult, cold_start, step
from smda.errors import SmdaError
from smda.grid import GLOBAL_025, BBox, Grid
from smda.ingest import DayOutcome, IngestReport, fetch_range
from smda.inputs import (
    MissingInputs,
    day_inputs,
    input_versions,
    missing_inputs,
    missing_message,
)
from smda.publish import Publisher
from smda.registry import ModelRegistry
from smda.retry import RetryPolicy
from smda.runtime import make_context
from smda.sources import OPERATIONAL, get_source
from smda.sources.base import IngestContext
from smda.store import Store, region_key
from smda.uncertainty import analysis_uncertainty

__all__ = [
    "REQUIRED",
    "ChainGap",
    "DailyPlan",
    "DayRun",
    "Runtime",
    "ValidationReport",
    "backfill_days",
    "ensure_static",
    "fetch_days",
    "fetch_span",
    "input_spans",
    "open_runtime",
    "plan_daily",
    "report_metrics",
    "run_day",
    "stale_days",
    "summary_markdown",
    "train_model",
    "validate_days",
]

LOG = logging.getLogger(__name__)

REQUIRED = ("era5", "mswep")
"""Sources without which a day cannot be run (SMAP is optional)."""
DEFAULT_FORECAST_SD = 0.04
"""Forecast error SD (m3 m-3) when the bundle's CV report has none."""
DEFAULT_SMAP_SD = 0.04
"""SMAP error SD (m3 m-3) when the bundle has no TC statistics for it."""

Status = Literal["analysis", "forecast_only", "skipped"]


class ChainGap(SmdaError):
    """The state of the day before is missing while the chain has earlier days."""


@dataclass(frozen=True)
class Runtime:
    """Everything one invocation works with, for one region (built by :func:`open_runtime`)."""

    settings: Settings
    ctx: IngestContext
    chain: StateChain
    registry: ModelRegistry
    publisher: Publisher

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def grid(self) -> Grid:
        return self.ctx.store.grid

    @property
    def region(self) -> str:
        return self.ctx.store.region

    @property
    def gain(self) -> float | None:
        """The fixed gain of ``SMDA_GAIN``, or None: the model's own (:mod:`smda.gain`)."""
        return self.settings.gain


def open_runtime(
    settings: Settings | None = None,
    *,
    region: str | BBox | None = None,
    today: date | None = None,
    policy: RetryPolicy | None = None,
) -> Runtime:
    """The run-time objects for ``region`` (default ``SMDA_REGION`` or the globe).

    The state chain lives at ``SMDA_STATE_URL/<region>`` (default ``<data_dir>/state``), models
    at ``<data_dir>/models/<region>``, products at ``SMDA_PRODUCTS_URL/<region>`` (default
    ``<data_dir>/products``).
    """
    settings = settings or load_settings()
    bbox = BBox.parse(region) if isinstance(region, str) else region
    ctx = make_context(settings, region=bbox, today=today, policy=policy)
    key = ctx.store.region
    state_root = settings.state_url or str(settings.data_dir / "state")
    products_root = settings.products_url or str(settings.data_dir / "products")
    return Runtime(
        settings=settings,
        ctx=ctx,
        chain=StateChain(f"{state_root.rstrip('/')}/{key}"),
        registry=ModelRegistry(settings.data_dir / "models" / key),
        publisher=Publisher(f"{products_root.rstrip('/')}/{key}"),
    )


def grid_of(region: str | BBox | None) -> Grid:
    """The analysis grid of a region (the globe when None)."""
    bbox = BBox.parse(region) if isinstance(region, str) else region
    return GLOBAL_025.subset(bbox) if bbox is not None else GLOBAL_025


# ---------------------------------------------------------------------------------------------
# planning


@dataclass(frozen=True)
class DailyPlan:
    """What the daily run will do.

    Attributes
    ----------
    last_completed:
        Last day of the state chain (None: empty chain, the first day starts cold).
    ready:
        Days to run, in order: after ``last_completed`` (or the newest ready day for an empty
        chain), up to the newest day whose required inputs are available.
    waiting:
        Source → why the next day cannot run yet (not yet published, provider error).
    newest:
        Newest day available per operational source (None when unknown).
    reprocess_from:
        First chain day whose inputs changed since it was computed (e.g. ERA5T → ERA5), or None.
    """

    last_completed: date | None
    ready: list[date]
    waiting: dict[str, str]
    newest: dict[str, date | None]
    reprocess_from: date | None = None

    def describe(self) -> str:
        days = (
            f"{len(self.ready)} day(s) {self.ready[0]} … {self.ready[-1]}"
            if self.ready
            else "no day"
        )
        waiting = "; ".join(f"{k}: {v}" for k, v in self.waiting.items()) or "nothing"
        return f"last analysis {self.last_completed or 'none'}; ready {days}; waiting on {waiting}"


def plan_daily(rt: Runtime, *, max_days: int = 60) -> DailyPlan:
    """Poll the operational sources and pick the days to run (module docstring, step 1).

    ``max_days`` bounds a catch-up: older gaps are left to :func:`backfill_days`.
    """
    newest: dict[str, date | None] = {}
    waiting: dict[str, str] = {}
    for name in OPERATIONAL:
        try:
            newest[name] = get_source(name).newest_available(rt.ctx)
        except SmdaError as exc:
            newest[name] = None
            waiting[name] = f"provider error: {exc}"
    required = [newest[n] for n in REQUIRED]
    last = rt.chain.last()
    if any(d is None for d in required):
        return DailyPlan(last, [], waiting or {"inputs": "unknown"}, newest)
    ready_to = min(d for d in required if d is not None)
    first = last + timedelta(days=1) if last else ready_to
    first = max(first, ready_to - timedelta(days=max_days - 1))
    ready = [first + timedelta(days=i) for i in range((ready_to - first).days + 1)]
    nxt = (ready[-1] if ready else (last or ready_to)) + timedelta(days=1)
    for name in REQUIRED:
        day = newest[name]
        if day is not None and day < nxt:
            waiting.setdefault(name, f"{nxt} not yet published (newest {day})")
    smap = newest.get("smap")
    if ready and (smap is None or smap < ready[-1]):
        waiting.setdefault("smap", f"newest {smap}: later days run forecast-only")
    return DailyPlan(last, ready, waiting, newest, stale_from(rt))


def stale_days(rt: Runtime, *, lookback: int = 90) -> list[date]:
    """Chain days of the last ``lookback`` days whose inputs changed since they were computed."""
    history = _history_days(rt)
    out = []
    for day in rt.chain.days()[-lookback:]:
        recorded = rt.chain.provenance(day).get("inputs")
        if recorded is not None and recorded != input_versions(rt.store, day, history):
            out.append(day)
    return out


def stale_from(rt: Runtime) -> date | None:
    """The first stale day (:func:`stale_days`), or None."""
    if not rt.chain.days():
        return None
    try:
        stale = stale_days(rt)
    except SmdaError:
        return None
    return stale[0] if stale else None


def _history_days(rt: Runtime) -> int:
    version = rt.registry.current_version()
    if version is None:
        return 30
    return rt.registry.load(version).spec.history_days


# ---------------------------------------------------------------------------------------------
# fetching


def input_spans(
    rt: Runtime, start: date, end: date, sources: Sequence[str] | None = None
) -> dict[str, tuple[date, date]]:
    """First and last day each source must be staged to run ``start`` … ``end``.

    MSWEP also covers the antecedent-precipitation window; when the chain has no day before
    ``start`` (a cold start), every source also covers the ``spinup_days`` before it.
    """
    history = _history_days(rt)
    first = start
    if not any(d < start for d in rt.chain.days()):
        first -= timedelta(days=rt.settings.spinup_days)
    return {
        name: (first - timedelta(days=history - 1) if name == "mswep" else first, end)
        for name in sources or OPERATIONAL
    }


def fetch_span(
    rt: Runtime,
    source: str,
    start: date,
    end: date,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """Fetch and stage exactly ``start`` … ``end`` of one source (idempotent)."""
    return fetch_range([source], start, end, rt.ctx, progress=progress)


def ensure_static(rt: Runtime) -> Path:
    """Fetch the ERA5 invariants and stage the static fields and land mask once (idempotent)."""
    from smda.sources.era5 import stage_static

    return stage_static(rt.ctx)


def fetch_days(
    rt: Runtime,
    days: Sequence[date],
    sources: Sequence[str] | None = None,
    *,
    progress: Callable[[DayOutcome], None] | None = None,
) -> IngestReport:
    """Fetch and stage the inputs of ``days`` (module docstring, step 2); idempotent.

    The spans come from :func:`input_spans` (MSWEP's antecedent window, a cold start's spin-up).
    """
    report = IngestReport()
    if not days:
        return report
    ensure_static(rt)
    for name, (first, last) in input_spans(rt, min(days), max(days), sources).items():
        report.outcomes.extend(fetch_span(rt, name, first, last, progress=progress).outcomes)
    return report


# ---------------------------------------------------------------------------------------------
# running days


@dataclass(frozen=True)
class DayRun:
    """What :func:`run_day` did for one day."""

    day: date
    status: Status
    model_version: str
    seconds: float = 0.0
    cog: str | None = None
    item: str | None = None
    state: str | None = None
    innovation_mean: float = float("nan")
    innovation_sd: float = float("nan")
    n_obs: int = 0
    assimilated_fraction: float = 0.0
    invalidated: list[date] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        """A flat row for tables (Prefect table artifacts, the CLI)."""
        return {
            "day": self.day.isoformat(),
            "status": self.status,
            "model": self.model_version,
            "assimilated %": round(100 * self.assimilated_fraction, 1),
            "O-F mean": _round(self.innovation_mean),
            "O-F sd": _round(self.innovation_sd),
            "seconds": round(self.seconds, 2),
            "cog": self.cog or "",
        }


def _round(value: float) -> float | None:
    return round(value, 4) if np.isfinite(value) else None


def provenance(rt: Runtime, day: date, bundle: ModelBundle) -> dict[str, Any]:
    """What the analysis of ``day`` is made of (deterministic: no wall-clock times)."""
    inputs = input_versions(rt.store, day, bundle.spec.history_days)
    return {
        "day": day.isoformat(),
        "region": rt.region,
        "model_version": bundle.version,
        "gain": "model" if rt.gain is None else rt.gain,
        "code_version": __version__,
        "inputs": inputs,
    }


def _state_before(rt: Runtime, day: date, bundle: ModelBundle, predict: Predict) -> Any:
    """The state of D−1: from the chain, or a cold start."""
    before = day - timedelta(days=1)
    if rt.chain.has(before):
        return rt.chain.state(before)
    earlier = [d for d in rt.chain.days() if d < day]
    if earlier:
        raise ChainGap(
            f"the state of {before} is missing but the chain has {earlier[-1]}: run "
            f"`smda backfill --start {earlier[-1] + timedelta(days=1)} --end {day}`"
        )
    n = rt.settings.spinup_days
    history = bundle.spec.history_days
    days = [before - timedelta(days=n - 1 - i) for i in range(n)]
    missing: list[tuple[str, date | None]] = list(
        dict.fromkeys(m for d in days for m in missing_inputs(rt.store, d, history))
    )
    if missing:  # before any work, as when every spin-up day was loaded first
        raise MissingInputs(missing_message(rt.store, missing, f"spin-up of {day}"), missing)
    LOG.info("cold start of %s: spin-up %s … %s", day, days[0], days[-1])
    inputs = (day_inputs(rt.store, d, history) for d in days)  # one day in memory at a time
    return cold_start(inputs, bundle, n, gain=rt.gain, predict=predict).analysis


def _uncertainty(result: CycleResult, bundle: ModelBundle) -> Any:
    """σ_a of the day from the gain used and the error SDs of the forecast and of SMAP*: the
    held-out cycles' medians (:mod:`smda.gain`) when the model has them, else the CV
    free-running ubRMSD and SMAP's TC error SD."""
    cv = bundle.cv_report.get(next(iter(bundle.cv_report), ""), {})
    forecast_sd = float(cv.get("free_running", {}).get("ubrmsd", DEFAULT_FORECAST_SD))
    smap_sd = float(bundle.tc_stats.get("error_sd", {}).get("smap", DEFAULT_SMAP_SD))
    held_out = bundle.gain.provenance if bundle.gain is not None else {}
    forecast_sd = float(held_out.get("median_sigma_f") or forecast_sd)
    smap_sd = float(held_out.get("median_sigma_o") or smap_sd)
    return analysis_uncertainty(result.flags, result.gain, forecast_sd, smap_sd)


def _innovation_stats(result: CycleResult) -> tuple[float, float, int, float]:
    inn = np.asarray(result.innovations.values, dtype=np.float64)
    flags = np.asarray(result.flags.values)
    valid = np.isfinite(inn)
    n = int(valid.sum())
    land = int(((flags & FLAG_LAND) > 0).sum())
    assimilated = int(((flags & FLAG_ASSIMILATED) > 0).sum())
    mean = float(inn[valid].mean()) if n else float("nan")
    sd = float(inn[valid].std()) if n > 1 else float("nan")
    return mean, sd, n, assimilated / land if land else 0.0


def _published(rt: Runtime, day: date) -> bool:
    pub = rt.publisher
    return pub.cog_path(day).exists() and pub.item_path(day).exists()


def run_day(
    rt: Runtime,
    day: date,
    *,
    force: bool = False,
    bundle: ModelBundle | None = None,
    predict: Predict | None = None,
) -> DayRun:
    """Forecast, nudge, persist and publish ``day`` (module docstring, step 3).

    Skipped when the chain already holds ``day`` with the same provenance (unless ``force``).
    Replacing a day invalidates (and unpublishes) the later days of the chain.

    Raises
    ------
    smda.inputs.MissingInputs
        Required inputs of the day (or of the spin-up of a cold start) are not staged.
    ChainGap
        The state of the day before is missing while the chain has earlier days.
    smda.registry.NoModel
        No model is registered for the region.
    """
    t0 = time.perf_counter()
    bundle = bundle or rt.registry.current()
    prov = provenance(rt, day, bundle)
    before = day - timedelta(days=1)
    prov["state_origin"] = (
        "chain" if rt.chain.has(before) else f"cold start {rt.settings.spinup_days} d"
    )
    if not force and rt.chain.has(day) and rt.chain.same_provenance(day, prov):
        if not _published(rt, day):  # a crash between committing the state and publishing
            rt.publisher.publish(day, rt.chain.read(day), rt.chain.provenance(day))
        return DayRun(
            day,
            "skipped",
            bundle.version,
            cog=str(rt.publisher.cog_path(day)),
            item=str(rt.publisher.item_path(day)),
            state=rt.chain.location(day),
        )
    inputs = day_inputs(rt.store, day, bundle.spec.history_days)  # MissingInputs says what to fetch
    predict = predict or rt.registry.predictor(bundle)
    state = _state_before(rt, day, bundle, predict)
    invalidated = rt.chain.invalidate_after(day) if rt.chain.has(day) else []
    if invalidated:
        rt.publisher.unpublish(invalidated)
        LOG.info("%s re-run: invalidated %d later day(s)", day, len(invalidated))
    result = step(state, inputs, bundle, gain=rt.gain, predict=predict)
    path = rt.chain.write(result, uncertainty=_uncertainty(result, bundle), provenance=prov)
    published = rt.publisher.publish(day, rt.chain.read(day), prov)
    mean, sd, n, frac = _innovation_stats(result)
    status: Status = "forecast_only" if result.forecast_only else "analysis"
    LOG.info("%s %s: %d obs, O-F %.4f ± %.4f", day, status, n, mean, sd)
    return DayRun(
        day,
        status,
        bundle.version,
        seconds=time.perf_counter() - t0,
        cog=str(published.cog),
        item=str(published.item),
        state=path,
        innovation_mean=mean,
        innovation_sd=sd,
        n_obs=n,
        assimilated_fraction=frac,
        invalidated=invalidated,
    )


def backfill_days(
    rt: Runtime,
    start: date,
    end: date,
    *,
    force: bool = False,
    progress: Callable[[DayRun], None] | None = None,
) -> list[DayRun]:
    """Step ``start`` … ``end`` in order (inputs must be staged: :func:`fetch_days`).

    Days already in the chain with the same provenance are skipped, so an interrupted backfill
    resumes where it stopped and gives the same bytes as an uninterrupted one. With ``force`` every
    day is recomputed (and the chain after ``start`` invalidated by the first one).
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    bundle = rt.registry.current()
    predict = rt.registry.predictor(bundle)
    runs = []
    for i in range((end - start).days + 1):
        run = run_day(rt, start + timedelta(days=i), force=force, bundle=bundle, predict=predict)
        runs.append(run)
        if progress is not None:
            progress(run)
    return runs


@dataclass(frozen=True)
class ValidationReport:
    """Validation of analysed days: innovation statistics per day, in-situ skill where staged.

    Attributes
    ----------
    days:
        One row per day: ``day``, ``status``, ``n_obs``, ``omf_mean``, ``omf_sd`` (O − F of the
        assimilated SMAP, m3 m-3), ``assimilated_pct``.
    stations:
        In-situ skill of the analysis over the days (ISMN staged for the region): median R,
        ubRMSD, bias and the number of stations; empty without staged ISMN.
    """

    days: list[dict[str, Any]]
    stations: dict[str, float]

    def rows(self) -> list[dict[str, Any]]:
        return self.days

    def markdown(self) -> str:
        if not self.days:
            return "No analysed day to validate.\n"
        keys = list(self.days[0])
        lines = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in self.days]
        if self.stations:
            lines += [
                "",
                "In situ (ISMN): " + ", ".join(f"{k} {v}" for k, v in self.stations.items()),
            ]
        return "\n".join(lines) + "\n"


def validate_days(rt: Runtime, days: Sequence[date]) -> ValidationReport:
    """Innovation statistics of ``days`` from the chain, and ISMN skill where stations are staged."""
    rows = []
    done = [d for d in days if rt.chain.has(d)]
    for day in done:
        ds = rt.chain.read(day)
        inn = np.asarray(ds["innovations"].values, dtype=np.float64)
        valid = np.isfinite(inn)
        flags = np.asarray(ds["flags"].values)
        land = max(int(((flags & FLAG_LAND) > 0).sum()), 1)
        rows.append(
            {
                "day": day.isoformat(),
                "status": "forecast_only"
                if int(ds["analysis"].attrs.get("forecast_only", 0))
                else "analysis",
                "n_obs": int(valid.sum()),
                "omf_mean": _round(float(inn[valid].mean())) if valid.any() else None,
                "omf_sd": _round(float(inn[valid].std())) if valid.sum() > 1 else None,
                "assimilated_pct": round(
                    100 * int(((flags & FLAG_ASSIMILATED) > 0).sum()) / land, 1
                ),
            }
        )
    return ValidationReport(rows, _station_skill(rt, done))


def _station_skill(rt: Runtime, days: Sequence[date]) -> dict[str, float]:
    staged = set(rt.store.staged_days("ismn"))
    days = [d for d in days if d in staged]
    if len(days) < 2:
        return {}
    from smda.metrics import score

    pairs: dict[str, list[tuple[float, float]]] = {}
    for day in days:
        obs = rt.store.open_staged("ismn", day)
        analysis = np.asarray(rt.chain.state(day).values)
        sim = analysis[obs["row"].values, obs["col"].values]
        for name, a, o in zip(obs["station"].values, sim, obs["soil_moisture"].values, strict=True):
            pairs.setdefault(str(name), []).append((float(a), float(o)))
    n = max(len(v) for v in pairs.values())
    table = np.full((2, len(pairs), n), np.nan)
    for i, values in enumerate(pairs.values()):
        table[:, i, : len(values)] = np.asarray(values).T
    s = score(table[0], table[1], min_n=min(n, 30))
    if not np.isfinite(s.r).any():
        return {}
    return {
        "stations": int(np.isfinite(s.r).sum()),
        "median_r": round(float(np.nanmedian(s.r)), 3),
        "median_ubrmsd": round(float(np.nanmedian(s.ubrmsd)), 4),
        "median_bias": round(float(np.nanmedian(s.bias)), 4),
    }


def train_model(rt: Runtime, start: date, end: date, **options: Any) -> Any:
    """Train on the staged label products of ``start`` … ``end`` and register the bundle.

    ``options`` go to :func:`smda.training.train_from_store`. Returns its ``TrainOutcome``.
    """
    from smda.training import train_from_store

    outcome = train_from_store(rt.store, start, end, **options)
    rt.registry.register(outcome.bundle)
    return outcome


def report_metrics(
    rt: Runtime,
    job: str,
    runs: Sequence[DayRun],
    *,
    plan: DailyPlan | None = None,
    validation: ValidationReport | None = None,
    status: Literal["completed", "failed", "crashed", "cancelled"] = "completed",
) -> bool:
    """Export a run's metrics (:mod:`smda.monitoring`) to ``SMDA_PUSHGATEWAY`` or, without
    one, to ``<data_dir>/metrics/<job>-<region>.prom``. Never fails the run."""
    from smda.monitoring import RunMetrics

    metrics = RunMetrics(rt.region)
    for run in runs:
        if run.status != "skipped":
            metrics.day_done(
                run.day,
                seconds=run.seconds,
                forecast_only=run.status == "forecast_only",
                assimilated_fraction=run.assimilated_fraction,
                innovation_mean=run.innovation_mean,
                innovation_sd=run.innovation_sd,
                n_obs=run.n_obs,
            )
    if plan is not None:  # days from each source's newest day to the providers' today
        for name in OPERATIONAL:
            newest = plan.newest.get(name)
            if newest is not None:
                metrics.inputs_waiting(name, max((rt.ctx.today - newest).days, 0))
    if validation is not None and validation.stations:
        stats = validation.stations
        metrics.validation(
            "ismn",
            r=float(stats.get("median_r", float("nan"))),
            ubrmsd=float(stats.get("median_ubrmsd", float("nan"))),
            bias=float(stats.get("median_bias", float("nan"))),
            n=int(stats.get("stations", 0)),
        )
    metrics.run_finished(status)
    return metrics.push(rt.settings.pushgateway, job, textfile_dir=rt.settings.data_dir / "metrics")


def summary_markdown(
    runs: Sequence[DayRun], plan: DailyPlan | None = None, report: IngestReport | None = None
) -> str:
    """A markdown summary of a run (for Prefect artifacts and logs)."""
    lines = ["# smda run", ""]
    if plan is not None:
        lines += [f"**Plan**: {plan.describe()}", ""]
    if report is not None and report.outcomes:
        lines += ["## Inputs", "", "| source | " + " | ".join(_STATUSES) + " |"]
        lines.append("|---" * (len(_STATUSES) + 1) + "|")
        for source, counts in sorted(report.counts().items()):
            lines.append(
                f"| {source} | " + " | ".join(str(counts.get(s, 0)) for s in _STATUSES) + " |"
            )
        lines.append("")
    if runs:
        rows = [r.as_row() for r in runs]
        keys = list(rows[0])
        lines += ["## Days", "", "| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    else:
        lines.append("No day was run.")
    return "\n".join(lines) + "\n"


_STATUSES = ("fetched", "replaced", "unchanged", "skipped", "not_available", "failed")


def data_paths(rt: Runtime) -> dict[str, str]:
    """Where this region's state, models and products live (for messages and artifacts)."""
    return {
        "state": rt.chain.url,
        "models": str(rt.registry.root),
        "products": str(rt.publisher.root),
        "catalog": str(rt.publisher.catalog_path),
        "staged": str(Path(rt.store.root) / "staged" / region_key(rt.grid)),
    }
