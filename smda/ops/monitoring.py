"""Operational metrics of one run, exported to Prometheus (ARCHITECTURE.md, daily cycle step 8).

A daily or backfill run creates one :class:`RunMetrics` for its region, reports what it did
(:meth:`~RunMetrics.day_done` per analysed day, :meth:`~RunMetrics.inputs_waiting` per source,
:meth:`~RunMetrics.validation`, :meth:`~RunMetrics.feature_drift`) and, at the end,
:meth:`~RunMetrics.run_finished` and :meth:`~RunMetrics.push`. The metrics live in a registry
owned by that object (no module-level global registry), so runs and tests never share state.

Export goes to a Prometheus **pushgateway** (``pushadd``: HTTP POST to
``/metrics/job/<job>/region/<region>``) or, without a gateway, to a **textfile** for
node-exporter's textfile collector, written atomically (:mod:`smda.ops.metrics_export`). Both
follow the same rule: *a run replaces the metrics it set and keeps the others.* A run that analysed no new day therefore
leaves ``smda_last_analysis_timestamp_seconds`` and the innovation statistics of the newest day
in place, which is what the staleness and drift alerts in ``monitoring/alerts.yml`` need. A
gateway that is down, or a textfile that cannot be written, is logged as a warning and never
fails the run.

Metrics (all gauges; labels in braces, plus ``job`` from the push; names carry their units):

- ``smda_last_analysis_timestamp_seconds{region}``: when the newest analysis was written (Unix s)
- ``smda_last_analysis_day_timestamp_seconds{region}``: the valid day of the newest analysis, 00 UTC
- ``smda_analysis_lag_days{region}``: the providers' today minus the newest valid day of the
  state chain — "stale" is judged on this, so a backfill of old days cannot hide a stalled chain
- ``smda_last_day_duration_seconds{region}``: wall time of the newest analysed day
- ``smda_last_day_forecast_only{region}``: 1 if the newest day had no SMAP input, else 0
- ``smda_assimilated_ratio{region}``: fraction of land cells nudged by SMAP (0–1)
- ``smda_innovation_mean_m3m3{region}``: mean O−F (SMAP* − forecast), newest day with obs
- ``smda_innovation_sd_m3m3{region}``: standard deviation of O−F, same day
- ``smda_innovation_observations{region}``: number of O−F pairs, same day
- ``smda_innovation_sd_ratio{region}``: SD of O−F over the spread training expects (≈ 1 when
  the forecast and SMAP errors are as trained: a skill check without stations)
- ``smda_inputs_waiting_days{region,source}``: days the cycle waits for a source (:meth:`RunMetrics.inputs_waiting`)
- ``smda_source_up{region,source}``: 1 if the last poll of the source succeeded, else 0
- ``smda_source_failed_polls{region,source}``: consecutive failed polls (0 when up)
- ``smda_source_newest_day_timestamp_seconds{region,source}``: newest day published (last good poll)
- ``smda_source_last_error_timestamp_seconds{region,source,kind}``: the last poll error, by kind
- ``smda_validation_r{region,series}``: Pearson correlation against a reference series
- ``smda_validation_ubrmsd_m3m3{region,series}``: unbiased RMSD against it
- ``smda_validation_bias_m3m3{region,series}``: bias (analysis − reference)
- ``smda_validation_pairs{region,series}``: number of pairs behind those statistics
- ``smda_validation_timestamp_seconds{region,series}``: when those statistics were computed
- ``smda_validation_expected{region,series}``: 1 when the region has the reference (ISMN
  stations staged), so that their absence can alert
- ``smda_feature_drift_max_abs_z{region}``: max |z| of the newest day's feature means against
  the training distribution stored in the bundle (:class:`smda.science.drift.FeatureStats`)
- ``smda_run_days{region}``: days analysed by the last run
- ``smda_last_run_status{region,status}``: 1 for the last run's final status
  (:data:`smda.ops.outcome.RUN_STATUSES`: completed, waiting, failed, crashed, cancelled,
  busy), 0 otherwise
- ``smda_repairs{region,kind}``: corrupt or leftover files the run repaired, by kind
  (:func:`smda.storage.integrity.repairs`: staged, state, compiled, published, orphan)
- ``smda_last_run_timestamp_seconds{region}``: when the last run finished (Unix s)
- ``smda_last_run_duration_seconds{region}``: how long the last run took, from its start
- ``smda_build_info{version}``: 1, labelled with the smda version
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from smda import __version__
from smda.ops.health import SourceHealth
from smda.ops.metrics_export import PUSH_TIMEOUT_SECONDS, push, textfile_name, write_textfile
from smda.ops.outcome import RUN_STATUSES, RunStatus
from smda.storage.integrity import repairs

__all__ = [
    "PUSH_TIMEOUT_SECONDS",
    "RUN_STATUSES",
    "RunMetrics",
    "RunStatus",
    "textfile_name",
]


def _day_timestamp(day: date) -> float:
    """Unix time (s) of 00:00 UTC of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


class RunMetrics:
    """Metrics of one run for one region, in a registry of their own.

    Parameters
    ----------
    region:
        Region label of every metric (a name such as ``"globe"`` or ``"demo"``, or the region
        string ``west,south,east,north``).
    clock:
        Wall clock returning Unix seconds; injectable for tests.
    started_at:
        Unix time at which the run started (default: now); the run's duration is measured from
        it, so create the object late only if you pass this.

    Examples
    --------
    >>> metrics = RunMetrics("demo")
    >>> metrics.inputs_waiting("era5", 0)
    >>> metrics.run_finished("completed")
    >>> metrics.registry.get_sample_value(
    ...     "smda_last_run_status", {"region": "demo", "status": "completed"}
    ... )
    1.0
    """

    def __init__(
        self,
        region: str,
        *,
        clock: Callable[[], float] = time.time,
        started_at: float | None = None,
    ) -> None:
        if not region:
            raise ValueError("RunMetrics needs a non-empty region label")
        self.region = region
        self._clock = clock
        self._started_at = clock() if started_at is None else started_at
        self._days = 0
        self._newest_day: date | None = None
        self.registry = CollectorRegistry(auto_describe=True)

        self._day_gauges()
        self._input_gauges()
        self._run_gauges()

    def _gauge(self, name: str, doc: str, *labels: str) -> Gauge:
        return Gauge(name, doc, ("region", *labels), registry=self.registry)

    def _day_gauges(self) -> None:
        """The newest analysed day: its time, duration, assimilation and innovations."""
        gauge = self._gauge
        self._last_analysis = gauge(
            "smda_last_analysis_timestamp_seconds",
            "Unix time at which the newest analysis was written.",
        )
        self._last_analysis_day = gauge(
            "smda_last_analysis_day_timestamp_seconds",
            "Valid day of the newest analysis (Unix time of 00:00 UTC).",
        )
        self._day_seconds = gauge(
            "smda_last_day_duration_seconds", "Wall time spent on the newest analysed day."
        )
        self._forecast_only = gauge(
            "smda_last_day_forecast_only",
            "1 if the newest analysed day had no SMAP input (analysis = forecast), else 0.",
        )
        self._assimilated = gauge(
            "smda_assimilated_ratio",
            "Fraction (0-1) of land cells of the newest day nudged toward a SMAP retrieval.",
        )
        self._innov_mean = gauge(
            "smda_innovation_mean_m3m3",
            "Mean innovation O-F (CDF-matched SMAP minus forecast, m3 m-3) of the newest day with observations.",
        )
        self._innov_sd = gauge(
            "smda_innovation_sd_m3m3",
            "Standard deviation of the innovations (m3 m-3) of the newest day with observations.",
        )
        self._innov_n = gauge(
            "smda_innovation_observations",
            "Number of innovations behind smda_innovation_mean_m3m3 and _sd_m3m3.",
        )
        self._innov_ratio = gauge(
            "smda_innovation_sd_ratio",
            "SD of O-F over the spread the training period expects, sqrt(sigma_f^2 + sigma_o^2).",
        )
        self._lag = gauge(
            "smda_analysis_lag_days",
            "Days from the newest valid day of the state chain to the providers' today.",
        )

    def _input_gauges(self) -> None:
        """The inputs waited for, and the validation of the analysis against references."""
        gauge = self._gauge
        self._waiting = gauge(
            "smda_inputs_waiting_days",
            "Days the cycle is waiting for this source: today minus the newest day it delivered.",
            "source",
        )
        self._val_r = gauge(
            "smda_validation_r", "Pearson correlation of the analysis with a reference.", "series"
        )
        self._val_ubrmsd = gauge(
            "smda_validation_ubrmsd_m3m3",
            "Unbiased RMSD (m3 m-3) of the analysis against a reference.",
            "series",
        )
        self._val_bias = gauge(
            "smda_validation_bias_m3m3",
            "Bias (analysis minus reference, m3 m-3).",
            "series",
        )
        self._val_n = gauge(
            "smda_validation_pairs", "Number of pairs behind the validation statistics.", "series"
        )
        self._val_time = gauge(
            "smda_validation_timestamp_seconds",
            "Unix time at which the validation statistics were computed.",
            "series",
        )
        self._val_expected = gauge(
            "smda_validation_expected",
            "1 when the region has this reference (e.g. ISMN stations staged), else 0.",
            "series",
        )
        self._source_up = gauge(
            "smda_source_up", "1 if the last poll of the source succeeded, else 0.", "source"
        )
        self._source_failed = gauge(
            "smda_source_failed_polls", "Consecutive failed polls of the source.", "source"
        )
        self._source_newest = gauge(
            "smda_source_newest_day_timestamp_seconds",
            "Newest day the source had published at its last good poll (00:00 UTC).",
            "source",
        )
        self._source_error = gauge(
            "smda_source_last_error_timestamp_seconds",
            "Unix time of the last failed poll of the source, labelled by the error's kind.",
            "source",
            "kind",
        )

    def _run_gauges(self) -> None:
        """Feature drift, and the run itself: days, status, time, duration, version."""
        gauge = self._gauge
        self._drift = gauge(
            "smda_feature_drift_max_abs_z",
            "Largest |z| of today's feature means against the training distribution.",
        )
        self._run_days = gauge("smda_run_days", "Days analysed by the last run.")
        self._run_status = gauge(
            "smda_last_run_status",
            "1 for the final status of the last run, 0 for the others.",
            "status",
        )
        self._run_time = gauge(
            "smda_last_run_timestamp_seconds", "Unix time at which the last run finished."
        )
        self._run_seconds = gauge("smda_last_run_duration_seconds", "Wall time of the last run.")
        self._repairs = gauge(
            "smda_repairs",
            "Corrupt or leftover files the last run found and repaired, by kind (staged, state, "
            "compiled, published, orphan...).",
            "kind",
        )
        Gauge(
            "smda_build_info",
            "smda version of the run (value 1).",
            ("version",),
            registry=self.registry,
        ).labels(version=__version__).set(1)

    # -- what a run reports -------------------------------------------------------------------

    def day_done(
        self,
        day: date,
        *,
        seconds: float,
        forecast_only: bool,
        assimilated_fraction: float,
        innovation_mean: float,
        innovation_sd: float,
        n_obs: int,
        feature_drift: float = math.nan,
        innovation_sd_ratio: float = math.nan,
    ) -> None:
        """Record one analysed day.

        The per-day gauges describe the *newest* day: a day older than one already reported in
        this run (a re-run inside a backfill) only counts towards :attr:`days`.

        Parameters
        ----------
        day:
            The analysed (valid) day D.
        seconds:
            Wall time spent on D (s).
        forecast_only:
            True when D had no SMAP input (the analysis is the forecast).
        assimilated_fraction:
            Fraction of land cells nudged toward SMAP, 0–1.
        innovation_mean, innovation_sd:
            Mean and standard deviation of the innovations O−F (m3 m-3). Ignored (the previous
            values are kept) when ``n_obs`` is 0 or they are not finite.
        n_obs:
            Number of innovations.
        feature_drift:
            Largest |z| of the day's feature means against the training distribution.
        innovation_sd_ratio:
            ``innovation_sd`` over the spread the training period expects (station-free skill).
        """
        if not 0.0 <= assimilated_fraction <= 1.0:
            raise ValueError(f"assimilated_fraction must be in [0, 1], got {assimilated_fraction}")
        self._days += 1
        self._run_days.labels(self.region).set(self._days)
        if self._newest_day is not None and day < self._newest_day:
            return
        self._newest_day = day
        r = self.region
        self._last_analysis.labels(r).set(self._clock())
        self._last_analysis_day.labels(r).set(_day_timestamp(day))
        self._day_seconds.labels(r).set(seconds)
        self._forecast_only.labels(r).set(1 if forecast_only else 0)
        self._assimilated.labels(r).set(assimilated_fraction)
        if n_obs > 0 and math.isfinite(innovation_mean) and math.isfinite(innovation_sd):
            self._innov_mean.labels(r).set(innovation_mean)
            self._innov_sd.labels(r).set(innovation_sd)
            self._innov_n.labels(r).set(n_obs)
            if math.isfinite(innovation_sd_ratio):
                self._innov_ratio.labels(r).set(innovation_sd_ratio)
        self.feature_drift(feature_drift)

    def inputs_waiting(self, source: str, days: int) -> None:
        """Record how many days the cycle is waiting for ``source``.

        ``days`` is today minus the newest day the provider has delivered (0 = today's data is
        in). Report every source the run needs, on every run: the alert thresholds per source
        (``monitoring/alerts.yml``) sit above each provider's normal latency.
        """
        if days < 0:
            raise ValueError(f"inputs_waiting days must be >= 0, got {days} for {source!r}")
        self._waiting.labels(self.region, source).set(days)

    def source_health(self, health: SourceHealth, today: date) -> None:
        """Record the health of one source (:mod:`smda.ops.health`) and the days the cycle waits
        for it, which stay reported (and grow) while the source is down."""
        labels = (self.region, health.source)
        self._source_up.labels(*labels).set(1 if health.up else 0)
        self._source_failed.labels(*labels).set(health.failed_polls)
        if health.newest is not None:
            self._source_newest.labels(*labels).set(_day_timestamp(health.newest))
        if health.error_at is not None and health.error_kind:
            self._source_error.labels(*labels, health.error_kind).set(health.error_at)
        waiting = health.waiting_days(today)
        if waiting is not None:
            self.inputs_waiting(health.source, waiting)

    def analysis_chain(self, newest: date | None, today: date) -> None:
        """Record the newest valid day of the state chain and its lag behind ``today``."""
        if newest is None:
            return
        self._last_analysis_day.labels(self.region).set(_day_timestamp(newest))
        self._lag.labels(self.region).set((today - newest).days)

    def validation(self, series: str, *, r: float, ubrmsd: float, bias: float, n: int) -> None:
        """Record validation statistics of the analysis against a reference ``series``.

        Parameters
        ----------
        series:
            The reference, e.g. ``"ismn"`` (in-situ stations) or ``"smap"``.
        r:
            Pearson correlation (dimensionless).
        ubrmsd, bias:
            Unbiased RMSD and bias (analysis − reference), m3 m-3.
        n:
            Number of pairs.
        """
        labels = (self.region, series)
        self._val_r.labels(*labels).set(r)
        self._val_ubrmsd.labels(*labels).set(ubrmsd)
        self._val_bias.labels(*labels).set(bias)
        self._val_n.labels(*labels).set(n)
        self._val_time.labels(*labels).set(self._clock())

    def validation_expected(self, series: str, expected: bool) -> None:
        """Record whether the region has the reference ``series`` (its validation is due)."""
        self._val_expected.labels(self.region, series).set(1 if expected else 0)

    def feature_drift(self, max_abs_z: float) -> None:
        """Record the feature drift of the day (:func:`smda.science.drift.feature_drift`); NaN is ignored."""
        if math.isfinite(max_abs_z):
            self._drift.labels(self.region).set(max_abs_z)

    def run_finished(self, status: RunStatus) -> None:
        """Record the final status of the run, its end time and duration."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}; valid: {', '.join(RUN_STATUSES)}")
        for name in RUN_STATUSES:
            self._run_status.labels(self.region, name).set(1 if name == status else 0)
        for kind, count in repairs().items():
            self._repairs.labels(self.region, kind).set(count)
        self._run_days.labels(self.region).set(self._days)
        self._run_time.labels(self.region).set(self._clock())
        self._run_seconds.labels(self.region).set(max(self._clock() - self._started_at, 0.0))

    @property
    def days(self) -> int:
        """Days recorded by :meth:`day_done` so far."""
        return self._days

    # -- export ------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The metrics of this run in Prometheus' text format."""
        return generate_latest(self.registry)

    def push(
        self, gateway_url: str | None, job: str, *, textfile_dir: Path | str | None = None
    ) -> bool:
        """Export the metrics (:func:`smda.ops.metrics_export.push`); never raises."""
        return push(self.registry, self.region, gateway_url, job, textfile_dir=textfile_dir)

    def write_textfile(self, path: Path | str) -> None:
        """Write the metrics to ``path`` atomically, keeping those this run did not set
        (:func:`smda.ops.metrics_export.write_textfile`)."""
        write_textfile(self.registry, path)
