"""CMR newest-first searches, UMM-G checksums and search pages made together, on the replica."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import requests

from smda.geo.grid import BBox
from smda_twin.clock import Clock
from smda_twin.earthdata import EarthdataReplica
from smda_twin.faults import FaultPlan
from smda_twin.httpbase import RequestLog
from smda_twin.world import World, WorldSpec

TODAY = date(2024, 7, 20)  # GLDAS newest 2024-06-05
WINDOW = "2024-06-01T00:00:00Z,2024-06-05T23:59:59Z"


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EarthdataReplica]:
    world = World(WorldSpec(seed=3, region=BBox(-100, 35, -99, 36), epoch=date(2024, 1, 1)))
    workdir = tmp_path_factory.mktemp("earthdata")
    running = EarthdataReplica(
        world, Clock(TODAY), workdir, log=RequestLog(), faults=FaultPlan(), max_page_size=3
    )
    running.start()
    yield running
    running.stop()


def _search(
    replica: EarthdataReplica, headers: dict[str, str] | None = None, **params: str
) -> requests.Response:
    query = {"short_name": "GLDAS_NOAH025_3H", "temporal[]": WINDOW, **params}
    url = replica.cmr_base_url + "granules.umm_json"
    return requests.get(url, params=query, headers=headers or {}, timeout=120)


def _starts(response: requests.Response) -> list[str]:
    return [
        i["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"]
        for i in response.json()["items"]
    ]


def test_newest_first_with_one_item_makes_one_file(replica: EarthdataReplica) -> None:
    directory = replica._files.directory / "GLDAS_NOAH025_3H"
    before = set(directory.glob("*.nc4")) if directory.exists() else set()
    newest = _search(replica, sort_key="-start_date", page_size="1")
    assert newest.status_code == 200 and newest.headers["CMR-Hits"] == "40"
    assert _starts(newest) == ["2024-06-05T21:00:00.000Z"]
    assert len(set(directory.glob("*.nc4")) - before) == 1  # only the listed granule was made
    oldest = _search(replica, sort_key="start_date", page_size="1")
    assert _starts(oldest) == ["2024-06-01T00:00:00.000Z"]


def test_search_after_pages_newest_first(replica: EarthdataReplica) -> None:
    seen: list[str] = []
    headers: dict[str, str] = {}
    for _ in range(20):
        r = _search(replica, headers, sort_key="-end_date", page_size="10")
        if not r.json()["items"]:
            break
        seen += _starts(r)
        headers["CMR-Search-After"] = r.headers["CMR-Search-After"]
    assert len(seen) == 40 and seen == sorted(seen, reverse=True)


def test_unknown_sort_key_is_refused(replica: EarthdataReplica) -> None:
    r = _search(replica, sort_key="cloud_cover")
    assert r.status_code == 400
    assert any("sort key [cloud_cover]" in e for e in r.json()["errors"])


def test_umm_g_has_the_files_size_and_sha256(replica: EarthdataReplica) -> None:
    items = _search(replica, page_size="3").json()["items"]
    assert len(items) == 3
    for item in items:
        info = item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
        url = item["umm"]["RelatedUrls"][0]["URL"]
        body = requests.get(
            url, headers={"Authorization": f"Bearer {replica.token}"}, timeout=60
        ).content
        assert info["SizeInBytes"] == len(body)
        assert info["Checksum"] == {
            "Value": hashlib.sha256(body).hexdigest(),
            "Algorithm": "SHA-256",
        }


def test_a_replaced_file_is_hashed_again(replica: EarthdataReplica, tmp_path: Path) -> None:
    item = _search(replica, page_size="1").json()["items"][0]
    name = item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"]
    path = replica._files.directory / "GLDAS_NOAH025_3H" / name
    path.write_bytes(path.read_bytes() + b"\0")
    again = _search(replica, page_size="1").json()["items"][0]
    info = again["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
    assert info["SizeInBytes"] == path.stat().st_size
    assert info["Checksum"]["Value"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.dumps(info) != json.dumps(
        item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
    )
