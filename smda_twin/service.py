"""The running offline twin: one world, one clock, and the three provider replicas.

``Twin`` starts (in background threads of this process) the CDS, Earthdata and MSWEP
replicas plus a small control API, and describes them as :class:`~smda.ingest.endpoints.Endpoints`.
Tests use it as a context manager; ``smda twin serve`` runs it until interrupted and writes
the endpoints file.

Control API (on the twin's network, loopback by default, for tests and for the demo running in other processes)::

    GET    /_twin/status            today, newest day per product, request counts
    POST   /_twin/clock             {"today": "YYYY-MM-DD"}  or  {"advance": 1}
    POST   /_twin/faults            {"provider": "cds"|"earthdata"|"mswep", <Fault fields>}
    DELETE /_twin/faults            remove every fault
    GET    /_twin/requests          the request log (optionally ?provider=cds)
    GET    /_twin/scenario          the active drift scenario (a list of drifts)
    POST   /_twin/scenario          replace it: a list of drifts (``[]`` clears it),
                                    see :mod:`smda_twin.scenario`
    DELETE /_twin/scenario          clear it
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from smda.ingest.endpoints import CdsEndpoint, EarthdataEndpoint, Endpoints, MswepEndpoint
from smda_twin.cds import CdsReplica
from smda_twin.clock import Clock, Latencies
from smda_twin.earthdata import EarthdataReplica
from smda_twin.faults import Fault, FaultPlan
from smda_twin.httpbase import (
    HttpError,
    Network,
    ReplicaServer,
    Request,
    RequestLog,
    Response,
    Route,
)
from smda_twin.mswep import MswepReplica
from smda_twin.scenario import Scenario, ScenarioError, ScenarioWorld
from smda_twin.world import World, WorldSpec

__all__ = ["PROVIDERS", "Twin", "TwinConfig"]

LOG = logging.getLogger(__name__)

PROVIDERS = ("cds", "earthdata", "mswep")
PRODUCTS = ("era5", "era5land", "smap", "mswep", "gldas")


@dataclass(frozen=True)
class TwinConfig:
    """What the twin simulates: the world, the date it believes is today, latencies, and
    the drift scenario it starts with (:mod:`smda_twin.scenario`; none by default); and where
    its servers listen (:class:`~smda_twin.httpbase.Network`: loopback by default)."""

    world: WorldSpec
    today: date
    latencies: Latencies = Latencies()
    scenario: Scenario = Scenario()
    network: Network = Network()


class Twin:
    """The offline twin: start it, point clients at :meth:`endpoints`, stop it.

    Parameters
    ----------
    config:
        World, today and latencies.
    workdir:
        Where replicas keep generated files (a temporary directory by default, removed on stop).
    """

    def __init__(self, config: TwinConfig, workdir: Path | None = None) -> None:
        self.config = config
        self._own_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="smda-twin-"))
        )
        self.world = ScenarioWorld(World(config.world), config.scenario)
        """The world as the replicas serve it: the spec's world under the current scenario."""
        self.clock = Clock(config.today, config.latencies)
        self.log = RequestLog()
        self.faults = {p: FaultPlan() for p in PROVIDERS}
        net = config.network
        self.cds = CdsReplica(
            self.world,
            self.clock,
            self.workdir / "cds",
            log=self.log,
            faults=self.faults["cds"],
            network=net,
        )
        self.earthdata = EarthdataReplica(
            self.world,
            self.clock,
            self.workdir / "earthdata",
            log=self.log,
            faults=self.faults["earthdata"],
            network=net,
        )
        self.mswep = MswepReplica(
            self.world,
            self.clock,
            self.workdir / "mswep",
            log=self.log,
            faults=self.faults["mswep"],
            network=net,
        )
        self.control = ReplicaServer(
            "control",
            [
                Route("GET", r"/_twin/status", self._status),
                Route("POST", r"/_twin/clock", self._set_clock),
                Route("POST", r"/_twin/faults", self._add_fault),
                Route("DELETE", r"/_twin/faults", self._clear_faults),
                Route("GET", r"/_twin/requests", self._requests),
                Route("GET", r"/_twin/scenario", self._get_scenario),
                Route("POST", r"/_twin/scenario", self._set_scenario),
                Route("DELETE", r"/_twin/scenario", self._clear_scenario),
            ],
            log=RequestLog(),
            faults=FaultPlan(),
            host=net.bind,
            url_host=net.host,
        )
        self._started = False

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        self.cds.start()
        self.earthdata.start()
        self.mswep.start()
        self.control.start()
        self._started = True
        LOG.info(
            "twin started: today %s, region %s, seed %s",
            self.clock.today,
            self.config.world.region,
            self.config.world.seed,
        )
        return self

    def stop(self) -> None:
        if self._started:
            self.control.stop()
            self.mswep.stop()
            self.earthdata.stop()
            self.cds.stop()
            self._started = False
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- description --------------------------------------------------------------------------
    def endpoints(self) -> Endpoints:
        """Everything a client needs to use this twin instead of the real providers."""
        return Endpoints(
            cds=CdsEndpoint(url=self.cds.url, key=self.cds.key),
            earthdata=EarthdataEndpoint(**self.earthdata.client_settings()),
            mswep=MswepEndpoint(url_template=self.mswep.url_template),
            control_url=self.control.base_url + "/_twin",
        )

    def add_fault(self, provider: str, fault: Fault) -> Fault:
        if provider not in self.faults:
            raise ValueError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
        return self.faults[provider].add(fault)

    def set_scenario(self, scenario: Scenario) -> None:
        """Replace the drift scenario (an empty one clears it). Files the replicas generated
        under another scenario are not served for the days it changes."""
        self.world.set_scenario(scenario)
        LOG.info("twin scenario: %s", scenario.to_json() or "none")

    def status(self) -> dict[str, Any]:
        return {
            "today": self.clock.today.isoformat(),
            "newest": {p: self.clock.newest(p).isoformat() for p in PRODUCTS},
            "region": str(self.config.world.region),
            "seed": self.config.world.seed,
            "requests": {p: self.log.count(p) for p in PROVIDERS},
            "faults": {p: plan.snapshot() for p, plan in self.faults.items()},
            "scenario": self.world.scenario.to_json(),
        }

    # -- control API --------------------------------------------------------------------------
    def _status(self, req: Request) -> Response:
        return Response.json(self.status())

    def _set_clock(self, req: Request) -> Response:
        body = req.json()
        try:
            if "today" in body:
                self.clock.set(date.fromisoformat(body["today"]))
            elif "advance" in body:
                self.clock.advance(int(body["advance"]))
            else:
                raise ValueError("give 'today' (YYYY-MM-DD) or 'advance' (days)")
        except (TypeError, ValueError) as exc:
            raise HttpError(400, "invalid clock request", str(exc)) from exc
        return Response.json({"today": self.clock.today.isoformat()})

    def _add_fault(self, req: Request) -> Response:
        body = dict(req.json() or {})
        provider = body.pop("provider", None)
        try:
            fault = self.add_fault(str(provider), Fault.from_dict(body))
        except (TypeError, ValueError) as exc:
            raise HttpError(400, "invalid fault", str(exc)) from exc
        return Response.json(fault.to_dict(), status=201)

    def _clear_faults(self, req: Request) -> Response:
        for plan in self.faults.values():
            plan.clear()
        return Response.json({"faults": 0})

    def _get_scenario(self, req: Request) -> Response:
        return Response.json({"scenario": self.world.scenario.to_json()})

    def _set_scenario(self, req: Request) -> Response:
        try:
            scenario = Scenario.from_json(req.json())
        except ScenarioError as exc:
            raise HttpError(400, "invalid scenario", "; ".join(exc.problems)) from exc
        self.set_scenario(scenario)
        return Response.json({"scenario": scenario.to_json()})

    def _clear_scenario(self, req: Request) -> Response:
        self.set_scenario(Scenario())
        return Response.json({"scenario": []})

    def _requests(self, req: Request) -> Response:
        provider = req.arg("provider")
        records = [
            asdict(r) for r in self.log.records() if provider is None or r.provider == provider
        ]
        return Response.json({"requests": records})
