"""Loopback replica of the Copernicus Climate Data Store retrieve API (new CDS, 2024+).

It speaks the protocol the real ``cdsapi``/``ecmwf-datastores-client`` use (SOURCES.md):

- ``GET  /api/catalogue/v1/messages``
- ``GET  /api/catalogue/v1/collections/{dataset}``           temporal extent ends at the newest
  published day (how a client learns what is available)
- ``GET  /api/retrieve/v1/processes/{dataset}``               (401 on a bad token)
- ``POST /api/retrieve/v1/processes/{dataset}/execution``     → 201 job, ``monitor`` link;
  403 licence not accepted, 400 invalid request
- ``GET  /api/retrieve/v1/jobs/{id}``                         job status (accepted → running →
  successful / failed), with ``results`` link when finished
- ``GET  /api/retrieve/v1/jobs/{id}/results``                 asset (href, size, type), or 400
  "The job has failed" with a traceback
- ``DELETE /api/retrieve/v1/jobs/{id}``
- ``HEAD/GET /download/{id}/{file}``                          the result, with Range support
  (no token, like the real asset host)

Every API call must carry ``PRIVATE-TOKEN``. Datasets: ``reanalysis-era5-single-levels`` (ERA5
0.25° hourly, including the invariants) and ``reanalysis-era5-land`` (0.1° hourly). Results
follow the new CDS netCDF layout, and a ZIP of ``stepType-instant``/``-accum`` members when a
request mixes instantaneous and accumulated variables. Only days published by the twin's
clock are served; ``expver`` says whether a day is ERA5T ("0005") or final ("0001"). A
variable the world withholds (a drift scenario's ``era5_missing``, :mod:`smda_twin.scenario`) on
any day of a request is left out of the whole result.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from smda_twin.clock import Clock
from smda_twin.faults import FaultPlan
from smda_twin.formats import era5 as era5_format
from smda_twin.httpbase import (
    LOOPBACK,
    HttpError,
    Network,
    ReplicaServer,
    Request,
    RequestLog,
    Response,
    Route,
)
from smda_twin.scenario import pinned

__all__ = ["DATASETS", "CdsReplica"]

LOG = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# dataset id → (grid step in degrees, world method name, clock product)
DATASETS: dict[str, tuple[float, str, str]] = {
    "reanalysis-era5-single-levels": (0.25, "era5_hourly", "era5"),
    "reanalysis-era5-land": (0.1, "era5land_hourly", "era5land"),
}
_INVARIANTS = ("z", "lsm", "slt", "cvh", "cvl", "tvh", "tvl")
_MAX_VALUES = 150_000_000  # the real CDS refuses requests above its cost limit


class HourlyWorld(Protocol):
    def era5_hourly(
        self, day: date, lat: FloatArray, lon: FloatArray, variables: Sequence[str]
    ) -> dict[str, npt.NDArray[np.float32]]: ...

    def era5land_hourly(
        self, day: date, lat: FloatArray, lon: FloatArray, variables: Sequence[str]
    ) -> dict[str, npt.NDArray[np.float32]]: ...


@dataclass
class _Job:
    job_id: str
    dataset: str
    request: dict[str, Any]
    created: datetime
    status: str = "accepted"
    queue_polls: int = 0
    fail_reason: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    result: Path | None = None
    media_type: str = "application/netcdf"
    log: list[tuple[str, str]] = field(default_factory=list)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


@dataclass(frozen=True)
class ParsedRequest:
    """A validated retrieve request: which days, hours, variables and points."""

    days: list[date]
    hours: list[int]
    variables: list[str]  # short names
    latitude: FloatArray
    longitude: FloatArray
    archive: bool


def _check_variables(dataset: str, request: dict[str, Any], problems: list[str]) -> list[str]:
    names = _as_list(request.get("variable"))
    unknown = [n for n in names if n not in era5_format.REQUEST_NAMES]
    if not names:
        problems.append("'variable' is required")
    if unknown:
        problems.append(f"unknown variable(s) {unknown}")
    if dataset == "reanalysis-era5-land":
        bad = [n for n in names if era5_format.REQUEST_NAMES.get(n) in _INVARIANTS]
        if bad:
            problems.append(f"variable(s) {bad} are not in reanalysis-era5-land")
    if dataset == "reanalysis-era5-single-levels" and "reanalysis" not in _as_list(
        request.get("product_type")
    ):
        problems.append("'product_type' must include 'reanalysis'")
    fmt = str(request.get("data_format", request.get("format", "grib")))
    if fmt not in ("netcdf", "netcdf4"):
        problems.append(f"data_format {fmt!r}: this replica serves 'netcdf' only")
    return [n for n in names if n not in unknown]


def _check_dates(request: dict[str, Any], problems: list[str]) -> tuple[list[date], list[int]]:
    try:
        years = [int(y) for y in _as_list(request.get("year"))]
        months = [int(m) for m in _as_list(request.get("month"))]
        days_ = [int(d) for d in _as_list(request.get("day"))]
        hours = sorted({int(t.split(":")[0]) for t in _as_list(request.get("time"))})
    except ValueError as exc:
        problems.append(f"year/month/day/time must be numbers: {exc}")
        return [], []
    if not (years and months and days_ and hours):
        problems.append("'year', 'month', 'day' and 'time' are required")
    if any(not 0 <= h <= 23 for h in hours):
        problems.append("time must be within 00:00…23:00")
    dates = []
    for y, m, d in itertools.product(years, months, days_):
        try:
            dates.append(date(y, m, d))
        except ValueError:
            continue  # the CDS silently skips impossible dates such as 31 June
    if years and not dates:
        problems.append("the request selects no valid date")
    return sorted(set(dates)), hours


def _check_area(
    request: dict[str, Any], step: float, problems: list[str]
) -> tuple[FloatArray, FloatArray]:
    """Point coordinates of the request: the area [N, W, S, E] or the globe (lon 0…360)."""
    area = request.get("area")
    if area is None:
        lat = np.round(np.arange(round(90 / step), round(-90 / step) - 1, -1) * step, 6)
        return lat, np.round(np.arange(0, round(360 / step)) * step, 6)
    try:
        north, west, south, east = (float(a) for a in area)
    except (TypeError, ValueError):
        problems.append(f"area {area!r} must be [north, west, south, east]")
        return np.zeros(0), np.zeros(0)
    if south > north:
        problems.append(f"area south {south} is north of north {north}")
    n_first, n_last = np.ceil(north / step - 1e-9), np.floor(south / step + 1e-9)
    lat = np.round(np.arange(n_first, n_last - 1, -1) * step, 6)
    width = (east - west) % 360.0 or (360.0 if east != west else 0.0)
    first, last = np.ceil(west / step - 1e-9), np.floor((west + width) / step + 1e-9)
    return lat, np.round(np.arange(first, last + 1) * step, 6)


def parse_request(dataset: str, request: dict[str, Any]) -> ParsedRequest:
    """Validate a request as the CDS does; raise ``HttpError(400)`` listing every problem."""
    step = DATASETS[dataset][0]
    problems: list[str] = []
    names = _check_variables(dataset, request, problems)
    download = str(request.get("download_format", "unarchived"))
    if download not in ("unarchived", "zip"):
        problems.append(f"download_format {download!r} is not 'unarchived' or 'zip'")
    dates, hours = _check_dates(request, problems)
    lat, lon = _check_area(request, step, problems)
    n_values = len(dates) * len(hours) * max(len(names), 1) * lat.size * lon.size
    if n_values > _MAX_VALUES:
        problems.append(f"request too large ({n_values:,} values > {_MAX_VALUES:,}): split it")
    if problems:
        raise HttpError(400, "invalid request", "; ".join(problems))
    short = [era5_format.REQUEST_NAMES[n] for n in names]
    return ParsedRequest(dates, hours, short, lat, lon, download == "zip")


class CdsReplica:
    """The CDS retrieve API replica (see the module docstring).

    Parameters
    ----------
    world:
        Source of the hourly fields.
    clock:
        Decides which days are published and whether they are ERA5T or final.
    workdir:
        Where results are written (one folder per job).
    key:
        The personal access token the replica accepts.
    job_delay:
        Seconds a job stays ``accepted`` before it runs (a queue).
    """

    def __init__(
        self,
        world: HourlyWorld,
        clock: Clock,
        workdir: Path,
        *,
        log: RequestLog,
        faults: FaultPlan,
        key: str | None = None,
        workers: int = 2,
        network: Network = LOOPBACK,
    ) -> None:
        self.world = world
        self.clock = clock
        self.workdir = Path(workdir)
        self.key = key or str(uuid.uuid4())
        self.faults = faults
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="twin-cds-job")
        api = r"/api/retrieve/v1"
        routes = [
            Route("GET", r"/api/catalogue/v1/messages", self._messages),
            Route("GET", r"/api/catalogue/v1/collections/(?P<dataset>[\w.-]+)", self._collection),
            Route("GET", api + r"/processes/(?P<dataset>[\w.-]+)", self._process),
            Route("POST", api + r"/processes/(?P<dataset>[\w.-]+)/execution", self._execute),
            Route("GET", api + r"/jobs/(?P<job>[\w-]+)", self._job_status),
            Route("DELETE", api + r"/jobs/(?P<job>[\w-]+)", self._job_delete),
            Route("GET", api + r"/jobs/(?P<job>[\w-]+)/results", self._job_results),
            Route("GET", r"/download/(?P<job>[\w-]+)/(?P<name>[\w.-]+)", self._download),
        ]
        self.server = ReplicaServer(
            "cds",
            routes,
            log=log,
            faults=faults,
            error_body=_error_body,
            host=network.bind,
            url_host=network.host,
        )

    # -- life cycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The API root to give ``cdsapi.Client(url=...)``."""
        return self.server.base_url + "/api"

    def start(self) -> CdsReplica:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- handlers -----------------------------------------------------------------------------
    def _check_token(self, req: Request) -> None:
        if req.headers.get("PRIVATE-TOKEN") != self.key:
            raise HttpError(
                401,
                "Authentication failed",
                "The authentication token is missing or invalid: check CDSAPI_KEY / ~/.cdsapirc.",
            )

    def _messages(self, req: Request) -> Response:
        return Response.json({"messages": []})

    def _collection(self, req: Request) -> Response:
        """Catalogue entry; its temporal extent ends at the newest published hour."""
        dataset = self._dataset(req)
        product = DATASETS[dataset][2]
        newest = self.clock.newest(product)
        begin = "1950-01-01T00:00:00Z" if product == "era5land" else "1940-01-01T00:00:00Z"
        return Response.json(
            {
                "type": "Collection",
                "id": dataset,
                "title": dataset,
                "extent": {
                    "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
                    "temporal": {"interval": [[begin, f"{newest.isoformat()}T23:00:00Z"]]},
                },
                "published": "2018-06-14T00:00:00Z",
                "updated": f"{self.clock.today.isoformat()}T00:00:00Z",
                "links": [
                    {
                        "rel": "retrieve",
                        "href": f"{req.base_url}/api/retrieve/v1/processes/{dataset}",
                    }
                ],
            }
        )

    def _dataset(self, req: Request) -> str:
        dataset = req.match["dataset"]
        if dataset not in DATASETS:
            raise HttpError(
                404,
                "Process not found",
                f"no dataset {dataset!r}; this replica has {sorted(DATASETS)}",
            )
        return dataset

    def _process(self, req: Request) -> Response:
        self._check_token(req)
        dataset = self._dataset(req)
        return Response.json(
            {
                "id": dataset,
                "title": dataset,
                "version": "1.0.0",
                "jobControlOptions": ["async-execute"],
                "outputTransmission": ["reference"],
                "links": [
                    {"rel": "self", "href": f"{req.base_url}/api/retrieve/v1/processes/{dataset}"}
                ],
            }
        )

    def _execute(self, req: Request) -> Response:
        self._check_token(req)
        dataset = self._dataset(req)
        if self.faults.take("POST", req.path, ("licence",)) is not None:
            raise HttpError(
                403,
                "required licences not accepted",
                "Not all the required licences have been accepted; please visit "
                f"{req.base_url}/datasets/{dataset}?tab=download#manage-licences "
                "to accept the required licence(s).",
            )
        body = req.json()
        inputs = body.get("inputs") if isinstance(body, dict) else None
        if not isinstance(inputs, dict):
            raise HttpError(400, "invalid request", "body must be {'inputs': {...}}")
        parse_request(dataset, inputs)  # validate now: 400 before a job exists
        job = _Job(uuid.uuid4().hex, dataset, inputs, datetime.now(UTC))
        queue = self.faults.take("POST", req.path, ("queue",))
        if queue is not None:
            job.queue_polls = queue.polls
        failed = self.faults.take("POST", req.path, ("job_failed",))
        if failed is not None:
            job.fail_reason = "injected failure: the MARS server rejected the request"
        with self._lock:
            self._jobs[job.job_id] = job
        if job.queue_polls == 0:
            self._enqueue(job)
        monitor = f"{req.base_url}/api/retrieve/v1/jobs/{job.job_id}"
        return Response.json(
            {
                "processID": dataset,
                "type": "process",
                "jobID": job.job_id,
                "status": "accepted",
                "created": _iso(job.created),
                "updated": _iso(job.created),
                "links": [
                    {
                        "href": monitor,
                        "rel": "monitor",
                        "type": "application/json",
                        "title": "job status info",
                    }
                ],
            },
            status=201,
        )

    def _job(self, req: Request) -> _Job:
        self._check_token(req)
        with self._lock:
            job = self._jobs.get(req.match["job"])
        if job is None:
            raise HttpError(404, "job not found", f"no job {req.match['job']!r}")
        return job

    def _job_status(self, req: Request) -> Response:
        job = self._job(req)
        with self._lock:
            if job.status == "accepted" and job.queue_polls > 0:
                job.queue_polls -= 1
                if job.queue_polls == 0:
                    self._enqueue(job)
            status = job.status
        base = f"{req.base_url}/api/retrieve/v1/jobs/{job.job_id}"
        links = [{"href": base, "rel": "self", "type": "application/json"}]
        if status in ("successful", "failed"):
            links.append({"href": base + "/results", "rel": "results"})
        reply: dict[str, Any] = {
            "processID": job.dataset,
            "type": "process",
            "jobID": job.job_id,
            "status": status,
            "created": _iso(job.created),
            "started": _iso(job.started),
            "finished": _iso(job.finished),
            "updated": _iso(job.finished or job.started or job.created),
            "links": links,
        }
        if req.arg("log") or req.arg("request"):
            start = req.arg("logStartTime")
            reply["metadata"] = {
                "log": [entry for entry in job.log if start is None or entry[0] > start],
                "request": {"ids": job.request},
            }
        return Response.json(reply)

    def _job_delete(self, req: Request) -> Response:
        job = self._job(req)
        with self._lock:
            job.status = "dismissed"
        return Response.json({"jobID": job.job_id, "status": "dismissed"})

    def _job_results(self, req: Request) -> Response:
        job = self._job(req)
        if job.status == "failed":
            return Response.json(
                {
                    "type": "job results failed",
                    "title": "The job has failed",
                    "status": 400,
                    "instance": f"{req.base_url}/api/retrieve/v1/jobs/{job.job_id}/results",
                    "traceback": job.fail_reason or "",
                },
                status=400,
            )
        if job.status != "successful" or job.result is None:
            raise HttpError(404, "results not ready", f"job {job.job_id} is {job.status}")
        href = f"{req.base_url}/download/{job.job_id}/{job.result.name}"
        return Response.json(
            {
                "asset": {
                    "value": {
                        "type": job.media_type,
                        "href": href,
                        "file:size": job.result.stat().st_size,
                        "file:checksum": "",
                        "file:local_path": str(job.result.name),
                    }
                }
            }
        )

    def _download(self, req: Request) -> Response:
        with self._lock:
            job = self._jobs.get(req.match["job"])
        if job is None or job.result is None or job.result.name != req.match["name"]:
            raise HttpError(404, "not found", req.path)
        return Response(file=job.result, content_type=job.media_type)

    # -- jobs ---------------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> None:
        self._pool.submit(self._run, job)

    def _run(self, job: _Job) -> None:
        now = datetime.now(UTC)
        with self._lock:
            if job.status != "accepted":
                return
            job.status, job.started = "running", now
            job.log.append((_iso(now) or "", "INFO: Processing request"))
        try:
            if job.fail_reason is not None:
                raise _JobFailure(job.fail_reason)
            path, media_type = self._produce(job)
        except _JobFailure as exc:
            with self._lock:
                job.status, job.fail_reason = "failed", str(exc)
                job.finished = datetime.now(UTC)
            return
        except Exception as exc:
            LOG.exception("CDS replica job %s failed", job.job_id)
            with self._lock:
                job.status, job.fail_reason = "failed", f"internal error: {exc!r}"
                job.finished = datetime.now(UTC)
            return
        with self._lock:
            job.result, job.media_type = path, media_type
            job.status, job.finished = "successful", datetime.now(UTC)

    def _produce(self, job: _Job) -> tuple[Path, str]:
        parsed = parse_request(job.dataset, job.request)
        _, method, product = DATASETS[job.dataset]
        published = [d for d in parsed.days if self.clock.available(product, d)]
        only_static = all(v in _INVARIANTS for v in parsed.variables)
        if not published and not only_static:
            newest = self.clock.newest(product)
            raise _JobFailure(
                "None of the data you have requested is available yet, please revise the "
                f"period requested. The latest available date is {newest.isoformat()}"
            )
        days = parsed.days if only_static else published
        fetch = getattr(pinned(self.world), method)  # one drift scenario for the whole job
        lon_world = (parsed.longitude + 180.0) % 360.0 - 180.0
        chunks: dict[str, list[npt.NDArray[np.float32]]] = {v: [] for v in parsed.variables}
        times: list[np.datetime64] = []
        expver: list[str] = []
        for day in days:
            fields = fetch(day, parsed.latitude, lon_world, parsed.variables)
            for v in parsed.variables:
                if v in fields:  # a drift scenario may withhold a variable
                    chunks[v].append(np.asarray(fields[v])[parsed.hours])
            for h in parsed.hours:
                times.append(
                    np.datetime64(datetime(day.year, day.month, day.day) + timedelta(hours=h), "s")
                )
                expver.append(self.clock.era5_expver(day))
        served = self._served(job, parsed.variables, chunks, len(days))
        out = self.workdir / job.job_id
        out.mkdir(parents=True, exist_ok=True)
        suffix = ".nc"
        target = out / f"{uuid.uuid4().hex}{suffix}"
        media_type = era5_format.write_era5_response(
            target,
            fields={v: np.concatenate(chunks[v]) for v in served},
            valid_time=np.array(times, dtype="datetime64[s]"),
            latitude=parsed.latitude,
            longitude=parsed.longitude,
            expver=expver,
            dataset=job.dataset,
        )
        if parsed.archive and media_type != "application/zip":
            # download_format "zip" wraps even a single netCDF in an archive.
            archive = target.with_suffix(".zip")
            with zipfile.ZipFile(archive, "w") as zf:
                kinds = {era5_format.STEP_TYPE.get(v, "instant") for v in served}
                zf.write(target, era5_format.zip_member_name(kinds.pop()))
            target.unlink()
            return archive, "application/zip"
        if media_type == "application/zip" and suffix != ".zip":
            final = target.with_suffix(".zip")
            target.rename(final)
            target = final
        return target, media_type

    def _served(
        self,
        job: _Job,
        variables: list[str],
        chunks: dict[str, list[npt.NDArray[np.float32]]],
        n_days: int,
    ) -> list[str]:
        """The variables every day delivered; the others are left out of the result (as a
        drift scenario's ``era5_missing`` asks), noted in the job log."""
        served = [v for v in variables if len(chunks[v]) == n_days]
        withheld = [v for v in variables if v not in served]
        if withheld and not served:
            raise _JobFailure(
                f"None of the requested variables ({', '.join(withheld)}) is available for the "
                "requested period"
            )
        if withheld:
            stamp = _iso(datetime.now(UTC)) or ""
            with self._lock:
                job.log.append((stamp, f"WARNING: variable(s) {', '.join(withheld)} not available"))
        return served


class _JobFailure(Exception):
    pass


def _error_body(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "traceback": detail,
    }
