"""The README's run command: the whole system on the offline twin, end to end.

``smda demo`` starts the offline twin (a synthetic world with a known truth behind loopback
replicas of the CDS, NASA Earthdata and the MSWEP server; ARCHITECTURE.md) and then does what an
operator does with the real providers, through the same code paths as the CLI and the flows:

1. **train** — fetch the label products (SMAP L3, ERA5-Land, GLDAS) and the forcings over a
   training period, merge the labels by triple collocation, train the LightGBM model with blocked
   cross-validation and register the bundle;
2. **backfill** — fetch and step the days after the training period from a cold start (spin-up
   over the last training days) up to the newest day the providers have;
3. **daily** — advance the twin's clock one day at a time and run the daily cycle as the
   scheduler would (poll → fetch → forecast → nudge → persist → publish);
4. **evaluate** — the OSSE table: analysis, open loop and every product against the twin's
   truth over the backfilled and daily days.

Products (COGs and the STAC catalog), the state chain, the model and the report land under the
data directory. A second run reuses what is there (the model of the same period, staged inputs,
finished days).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from smda.cli.common import SeedOpt, console
from smda.cli.common import settings as _settings
from smda.config import Settings
from smda.geo.grid import BBox
from smda.ops import (
    REQUIRED,
    DayRun,
    Runtime,
    backfill_days,
    ensure_static,
    fetch_days,
    fetch_span,
    first_day_to_run,
    open_runtime,
    plan_daily,
    train_model,
)
from smda.science.bundle import HyperParams
from smda.science.model import CVConfig, TrainConfig

__all__ = ["DemoConfig", "DemoReport", "run_demo"]

LOG = logging.getLogger(__name__)

DEMO_REGION = BBox(-105.0, 30.0, -95.0, 40.0)
LABEL_SOURCES = ("era5", "mswep", "smap", "era5land", "gldas")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's world and periods (defaults: about four minutes on 2 cores).

    The evaluated period (backfill and daily runs, 43 days) is long enough for the open loop to
    drift away from the twin's truth: on a fraternal twin, nudging toward SMAP adds day-to-day
    noise but keeps the state on track, which shows over weeks (on windows of two weeks the
    free-running model can have the higher R; README, "Skill on the twin").

    Attributes
    ----------
    region, seed:
        The twin's world (the demo region of the README).
    today:
        The twin's date at the end of the demo; it starts ``daily_runs`` days earlier.
    train_days:
        Length of the training period, which ends the day before the backfill.
    backfill_days:
        Days backfilled up to the newest day available when the demo starts.
    daily_runs:
        Daily runs, one per simulated day.
    spinup_days:
        Cold-start spin-up before the backfill (inside the training period: already staged).
    min_n:
        Fewest common days for valid triple collocation (short training period).
    cdf_min_samples:
        Fewest days with both the model and SMAP for a pixel's CDF table (SMAP revisits a
        cell every 2–3 days: about 15 in the training period).
    """

    region: BBox = DEMO_REGION
    seed: int = 42
    today: date = date(2024, 7, 20)
    train_days: int = 40
    backfill_days: int = 40
    daily_runs: int = 3
    spinup_days: int = 7
    min_n: int = 20
    cdf_min_samples: int = 10
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            hyper=HyperParams(
                learning_rate=0.1, num_leaves=31, max_rounds=200, early_stopping_rounds=20
            ),
            cv=CVConfig(n_folds=4, block_deg=2.5),
            compare=(),
        )
    )


@dataclass
class DemoReport:
    """What the demo did and where the results are."""

    model_version: str = ""
    trained: bool = False
    train_period: tuple[date, date] | None = None
    runs: list[DayRun] = field(default_factory=list)
    daily: list[str] = field(default_factory=list)
    osse: pd.DataFrame | None = None
    report: Path | None = None
    paths: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


Say = Callable[[str], None]


def _train(rt: Runtime, cfg: DemoConfig, start: date, end: date, say: Say) -> tuple[str, bool]:
    """Train on ``start … end`` unless the current model was trained on that period."""
    version = rt.registry.current_version()
    if version is not None:
        period = rt.registry.load(version).tc_stats.get("period", {})
        if period == {"start": start.isoformat(), "end": end.isoformat()}:
            say(f"model {version} (trained on {start} … {end}) is registered: not retraining")
            return version, False
    ensure_static(rt)
    for source in LABEL_SOURCES:
        first = start - timedelta(days=29) if source == "mswep" else start
        say(f"fetching {source} {first} … {end}")
        report = fetch_span(rt, source, first, end)
        if not report.ok:
            failed = report.by_status("failed")
            raise RuntimeError(f"{source}: {len(failed)} day(s) failed: {failed[0].reason}")
    say(f"training on {start} … {end} (TC labels, blocked {cfg.train.cv.n_folds}-fold CV)")
    outcome = train_model(
        rt,
        start,
        end,
        config=cfg.train,
        min_n=cfg.min_n,
        cdf_min_samples=cfg.cdf_min_samples,
        progress=say,
    )
    return outcome.bundle.version, True


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _advance(rt: Runtime, days: int) -> date:
    """Move the twin's clock (its control API) and the runtime's idea of today."""
    import requests

    endpoints = rt.ctx.endpoints
    assert endpoints is not None and endpoints.control_url
    reply = requests.post(f"{endpoints.control_url}/clock", json={"advance": days}, timeout=10)
    reply.raise_for_status()
    return date.fromisoformat(reply.json()["today"])


def _daily(
    rt: Runtime, settings: Settings, cfg: DemoConfig, report: DemoReport, say: Say
) -> Runtime:
    """One scheduled daily run per simulated day (each as a new process would start)."""
    for _ in range(cfg.daily_runs):
        today = _advance(rt, 1)
        rt = open_runtime(settings, region=cfg.region)
        plan = plan_daily(rt)
        runs: list[DayRun] = []
        if plan.ready:
            fetch_days(rt, plan.ready)
            # from the first day whose inputs changed, e.g. MSWEP NRT files the fetch re-fetched
            # because they were revised: the chain never keeps a day made of replaced inputs
            runs = backfill_days(rt, first_day_to_run(rt, plan), plan.ready[-1])
        line = f"daily run on {today}: " + (
            ", ".join(f"{r.day} {r.status}" for r in runs) or f"waiting ({plan.describe()})"
        )
        say(line)
        report.daily.append(line)
        report.runs += runs
    return rt


def _evaluate(rt: Runtime, cfg: DemoConfig, start: date, report: DemoReport) -> None:
    """The OSSE table of ``start`` … the last analysed day against the twin's truth."""
    from smda.cli.twin import truth_of
    from smda.ops.evaluate import (
        report_directory,
        run_experiments,
        score_tables,
        write_report,
        write_series,
    )
    from smda_twin.world import WorldSpec

    last = rt.chain.last() or start
    fetch_span(rt, "era5land", start, last)  # a product to compare with (GLDAS: 45 days late)
    bundle = rt.registry.current()
    series = run_experiments(
        rt.store,
        bundle,
        start,
        last,
        gain=rt.gain,
        predict=rt.registry.predictor(bundle),
        spinup_days=cfg.spinup_days,
    )
    epoch = WorldSpec(seed=cfg.seed, region=cfg.region).epoch
    truth = truth_of(cfg.seed, cfg.region, start, last, epoch=epoch)
    tables = score_tables(series, truth=truth, min_n=10)
    report.osse = tables["truth"]
    meta: dict[str, Any] = {
        "start": start.isoformat(),
        "end": last.isoformat(),
        "region": str(cfg.region),
        "gain": series.attrs["gain"],
        "model_version": bundle.version,
        "spinup_days": cfg.spinup_days,
        "truth": f"offline twin, seed {cfg.seed}",
        "min_n": 10,
    }
    directory = report_directory(rt.settings.data_dir, rt.grid)
    report.report = write_report(tables, directory, meta=meta)
    cycled = write_series(series, directory)  # `smda plot --point` draws its open loop
    report.paths = {
        "catalog": rt.publisher.location(rt.publisher.catalog_path),
        "cogs": rt.publisher.location(rt.publisher.root / "cog"),
        "state": rt.chain.url,
        "model": str(rt.registry.path(bundle.version)),
        "report": str(report.report),
        "series": str(cycled),
    }


QUICK = DemoConfig(
    region=BBox(-101.0, 34.0, -99.0, 36.0),  # 8 × 8 cells
    train_days=30,
    daily_runs=2,
    spinup_days=5,
    min_n=15,
    cdf_min_samples=8,
    train=TrainConfig(
        hyper=HyperParams(
            learning_rate=0.2, num_leaves=15, max_rounds=40, early_stopping_rounds=10
        ),
        cv=CVConfig(n_folds=4, block_deg=0.5),
        compare=(),
    ),
)
"""``smda demo --quick``: a smoke test of an installation (an image, a new machine). Every stage
runs as in the full demo — training with blocked CV, backfill,
daily runs, COG/STAC, the OSSE table — on 8 × 8 cells with a short, small model. The backfill
keeps its 40 days (the training period must end before GLDAS's 45-day latency). Its skill figures
are not the README's: a 30-day training of 40 rounds on 64 cells is a smoke test, not a model."""


def run_demo(
    settings: Settings, workdir: Path, cfg: DemoConfig | None = None, *, say: Say = LOG.info
) -> DemoReport:
    """Run the demo (module docstring) with the twin's files under ``workdir``."""
    from smda_twin.service import Twin, TwinConfig
    from smda_twin.world import WorldSpec

    cfg = cfg or DemoConfig()
    report = DemoReport()
    start_today = cfg.today - timedelta(days=cfg.daily_runs)
    spec = WorldSpec(seed=cfg.seed, region=cfg.region)
    with Twin(TwinConfig(world=spec, today=start_today), workdir / "twin") as twin:
        endpoints_file = workdir / "endpoints.json"
        twin.endpoints().write(endpoints_file)
        settings = settings.model_copy(
            update={
                "endpoints": endpoints_file,
                "region": str(cfg.region),
                "spinup_days": cfg.spinup_days,
            }
        )
        say(f"offline twin up: today {start_today}, region {cfg.region}, world seed {cfg.seed}")
        t0 = time.perf_counter()
        rt = open_runtime(settings, region=cfg.region)
        newest = min(d for k, d in plan_daily(rt).newest.items() if k in REQUIRED and d)
        back_start = newest - timedelta(days=cfg.backfill_days - 1)
        train_end = back_start - timedelta(days=1)
        train_start = train_end - timedelta(days=cfg.train_days - 1)
        report.model_version, report.trained = _train(rt, cfg, train_start, train_end, say)
        report.train_period = (train_start, train_end)
        report.seconds["train"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        say(f"backfill {back_start} … {newest}")
        todo = [d for d in _days(back_start, newest) if not rt.chain.has(d)]
        if todo:  # a rerun fetches nothing: the twin's clock restarts, revisions would go back
            fetch_days(rt, todo)
        report.runs += backfill_days(rt, back_start, newest)
        report.seconds["backfill"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        rt = _daily(rt, settings, cfg, report, say)
        report.seconds["daily"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        say(f"evaluating {back_start} … {rt.chain.last()} against the twin's truth")
        _evaluate(rt, cfg, back_start, report)
        report.seconds["evaluate"] = time.perf_counter() - t0
    return report


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where the twin keeps its files (default: <data_dir>/twin-demo)."),
    ] = None,
    seed: SeedOpt = 42,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A smoke test: every stage on 8 × 8 cells with a small model (its skill "
            "figures are not the README's).",
        ),
    ] = False,
) -> None:
    """The whole system on the offline twin: train, backfill, daily runs, COG/STAC, OSSE table."""
    settings = _settings()
    cfg = replace(QUICK if quick else DemoConfig(), seed=seed)
    report = run_demo(
        settings,
        workdir or settings.data_dir / "twin-demo",
        cfg,
        say=lambda line: console.print(f"[bold]demo[/bold] {line}"),
    )
    out = Console(width=max(Console().width, 120))
    if report.osse is not None:
        table = Table(title="OSSE: skill against the twin's truth (median over cells)")
        table.add_column("series")
        for col in report.osse.columns:
            table.add_column(str(col), justify="right")
        for name, row in report.osse.iterrows():
            table.add_row(str(name), *(_cell(v) for v in row.to_numpy()))
        out.print(table)
    done = sum(r.status != "skipped" for r in report.runs)
    out.print(
        f"model {report.model_version} ({'trained' if report.trained else 'reused'}); "
        f"{done} day(s) computed, {len(report.runs) - done} already done"
    )
    for name, path in report.paths.items():
        out.print(f"  {name:8} {path}")
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items())
    out.print(f"timings: {timing}")


def _cell(value: object) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1:
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) >= 0.1 else f"{value:.4f}"
    return str(value)
