"""The Earthdata replica, driven by the real earthaccess 0.19 client (and plain requests).

earthaccess keeps its login in module globals (``earthaccess._auth``/``__store__``) and reads
``REQUESTS_CA_BUNDLE``/``EARTHDATA_*``/``NETRC`` from the environment, so every test gets a
fresh ``Auth``, its own environment and a socket guard that refuses any host but loopback.
"""

from __future__ import annotations

import gc
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import h5py
import netCDF4
import pytest
import requests

import smda_twin.granules as granules_module
from smda.geo.grid import BBox
from smda.ingest.endpoints import EarthdataEndpoint
from smda_twin.clock import Clock
from smda_twin.earthdata import EarthdataReplica
from smda_twin.faults import Fault, FaultPlan
from smda_twin.httpbase import RequestLog
from smda_twin.world import World, WorldSpec

TODAY = date(2024, 7, 20)  # SMAP newest 2024-07-18, GLDAS newest 2024-06-05
REGION = BBox(-100, 35, -99, 36)
BOX = (-100.0, 35.0, -99.0, 36.0)
SMAP_DAYS = ("2024-07-14", "2024-07-18")  # five published days
GLDAS_DAY = "2024-06-05"
H5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldSpec(seed=11, region=REGION, epoch=date(2024, 1, 1)))


@pytest.fixture(scope="module")
def granule_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One work directory for the module: generated granules are reused across tests."""
    return tmp_path_factory.mktemp("earthdata")


@pytest.fixture
def replica(world: World, granule_cache: Path) -> Iterator[EarthdataReplica]:
    before = set(threading.enumerate())
    running = EarthdataReplica(
        world, Clock(TODAY), granule_cache, log=RequestLog(), faults=FaultPlan(), max_page_size=2
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()
        _wait_for_threads_to_end(before)


def _wait_for_threads_to_end(before: set[threading.Thread], timeout: float = 10.0) -> None:
    """Servers are stopped; their per-connection threads end once clients drop keep-alives."""
    deadline = time.monotonic() + timeout
    while extra := [t for t in threading.enumerate() if t not in before]:
        if time.monotonic() > deadline:
            pytest.fail(f"threads still running after the test: {[t.name for t in extra]}")
        gc.collect()  # closes the sockets of unreferenced requests sessions
        time.sleep(0.05)


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Refuse name resolution of any host but loopback; returns the refused hosts."""
    refused: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in ("localhost", "127.0.0.1", "::1"):
            refused.append(name)
            raise socket.gaierror(f"test guard: no network access to {name}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return refused


@pytest.fixture
def ea(
    replica: EarthdataReplica,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    loopback_only: list[str],
) -> Iterator[Any]:
    """The earthaccess module with fresh global state, pointed at the replica (not logged in)."""
    import earthaccess
    import tenacity
    import tqdm
    from earthaccess.auth import Auth
    from earthaccess.store import Store

    for name in ("EARTHDATA_TOKEN", "EARTHDATA_USERNAME", "EARTHDATA_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(replica.ca_bundle_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))  # ignore the developer's ~/.netrc
    monkeypatch.setattr(earthaccess, "_auth", Auth())
    monkeypatch.setattr(earthaccess, "__store__", None, raising=False)
    # Store() probes the AWS metadata address 169.254.169.254 to detect us-west-2.
    monkeypatch.setattr(Store, "_running_in_us_west_2", lambda self: False)
    # _download_file retries 3 times with 1-10 s exponential waits: keep the retries, not the waits.
    monkeypatch.setattr(Store._download_file.retry, "wait", tenacity.wait_none())
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # pqdm's bars: no monitor thread
    yield earthaccess
    store = getattr(earthaccess, "__store__", None)
    session = getattr(store, "_http_session", None)
    if session is not None:
        session.close()
    assert loopback_only == [], f"earthaccess tried to reach {loopback_only}"


def _token_login(ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("EARTHDATA_TOKEN", replica.token)
    return ea.login(strategy="environment", system=replica.earthaccess_system())


def _bearer(replica: EarthdataReplica) -> dict[str, str]:
    return {"Authorization": f"Bearer {replica.token}"}


def _smap_url(replica: EarthdataReplica, day: date) -> str:
    name = f"SMAP_L3_SM_P_E_{day:%Y%m%d}_R19240_001.h5"
    return f"{replica.data_base_url}/SMAP/SPL3SMP_E.006/{day:%Y.%m.%d}/{name}"


def _cmr_items(replica: EarthdataReplica, **params: str) -> requests.Response:
    return requests.get(replica.cmr_base_url + "granules.umm_json", params=params, timeout=60)


# -- login ---------------------------------------------------------------------------------------


def test_token_login_searches_pages_and_downloads_spl3smp_e(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    auth = _token_login(ea, replica, monkeypatch)
    assert auth.authenticated
    assert replica.edl.provider == "earthdata"
    log = replica.edl.log
    assert log.count(path=r"^/profile$", status=200) == 1  # Store() checks the profile once
    assert log.count(path="find_or_create_token") == 0  # token mode makes no login request

    results = ea.search_data(
        short_name="SPL3SMP_E", version="006", temporal=SMAP_DAYS, bounding_box=BOX
    )
    assert [g["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"] for g in results] == [
        f"2024-07-{d}T00:00:00.000Z" for d in range(14, 19)
    ]
    # two hits requests (search_data and get_all) + three pages of at most 2 items
    assert log.count(path=r"granules\.umm_json$") == 5
    assert {g["meta"]["provider-id"] for g in results} == {"NSIDC_CPRD"}

    files = ea.download(results, tmp_path / "smap")
    assert sorted(p.name for p in files) == [
        f"SMAP_L3_SM_P_E_202407{d}_R19240_001.h5" for d in range(14, 19)
    ]
    assert log.count(method="GET", path=r"\.h5$", status=200) == 5
    sizes = {
        g["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"]: g["umm"][
            "DataGranule"
        ]["ArchiveAndDistributionInformation"][0]["SizeInBytes"]
        for g in results
    }
    for path in files:
        assert path.stat().st_size == sizes[path.name]
    with h5py.File(files[0], "r") as f:
        am, pm = f["Soil_Moisture_Retrieval_Data_AM"], f["Soil_Moisture_Retrieval_Data_PM"]
        assert am["soil_moisture"].shape == (1624, 3856)
        assert pm["soil_moisture_pm"].shape == (1624, 3856)
        sm = am["soil_moisture"]
        assert sm.dtype == "float32" and sm.attrs["_FillValue"] == -9999.0
        assert bytes(sm.attrs["units"]).rstrip(b"\0") == b"cm**3/cm**3"
        assert pm["retrieval_qual_flag_pm"].dtype == "uint16"
        assert "soil_moisture" not in pm and "tb_time_seconds_pm" in pm


def test_password_login_needs_edl_on_port_443_unless_netrc_supplies_basic_auth(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from earthaccess.exceptions import LoginAttemptFailure

    monkeypatch.setenv("EARTHDATA_USERNAME", replica.username)
    monkeypatch.setenv("EARTHDATA_PASSWORD", replica.password)
    system = replica.earthaccess_system()
    # earthaccess adds Basic auth in a response hook that compares the URL's hostname
    # ("localhost") with edl_hostname ("localhost:PORT"): off port 443 it never fires.
    with pytest.raises(LoginAttemptFailure, match="invalid_credentials"):
        ea.login(strategy="environment", system=system)
    assert replica.edl.log.count(path="find_or_create_token", status=401) == 1

    # requests' own netrc lookup (by host without port) supplies the Basic credentials.
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine localhost login {replica.username} password {replica.password}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    auth = ea.login(strategy="environment", system=system)
    assert auth.authenticated and auth.token["access_token"] == replica.token
    assert auth.token["token_type"] == "Bearer"
    results = ea.search_data(short_name="SPL3SMP_E", version="006", temporal=SMAP_DAYS)
    assert len(results) == 5


def test_token_endpoint_with_basic_auth_and_profile_with_bearer(replica: EarthdataReplica) -> None:
    base = f"https://{replica.edl_host}"
    verify = str(replica.ca_bundle_path)
    url = base + "/api/users/find_or_create_token"
    ok = requests.post(url, auth=(replica.username, replica.password), verify=verify, timeout=10)
    assert ok.status_code == 200
    body = ok.json()
    assert body["access_token"] == replica.token and body["token_type"] == "Bearer"
    month, day, year = (int(x) for x in body["expiration_date"].split("/"))
    assert date(year, month, day) > date.today()
    bad = requests.post(url, auth=(replica.username, "wrong"), verify=verify, timeout=10)
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_credentials"
    assert requests.post(url, verify=verify, timeout=10).status_code == 401
    tokens = requests.get(
        base + "/api/users/tokens",
        auth=(replica.username, replica.password),
        verify=verify,
        timeout=10,
    )
    assert tokens.json()[0]["access_token"] == replica.token

    profile = requests.get(base + "/profile", headers=_bearer(replica), verify=verify, timeout=10)
    assert profile.status_code == 200 and profile.json()["uid"] == replica.username
    headers = {"Authorization": "Bearer not-a-token"}
    assert (
        requests.get(base + "/profile", headers=headers, verify=verify, timeout=10).status_code
        == 401
    )
    replica.expire_token()
    expired = requests.get(base + "/profile", headers=_bearer(replica), verify=verify, timeout=10)
    assert expired.status_code == 401 and expired.json()["error"] == "token_expired"
    # the replica's certificate is not trusted without its CA bundle
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(base + "/profile", verify=True, timeout=10)


def test_settings_system_status_and_collections(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = replica.client_settings()
    endpoint = EarthdataEndpoint(**settings)  # fits the endpoints file as is
    assert endpoint.cmr_base_url.startswith("http://127.0.0.1:") and endpoint.cmr_base_url.endswith(
        "/"
    )
    assert endpoint.edl_hostname == replica.edl_host and endpoint.edl_hostname.startswith(
        "localhost:"
    )
    assert Path(endpoint.ca_bundle or "").read_text().startswith("-----BEGIN CERTIFICATE-----")
    system = replica.earthaccess_system()
    assert system.edl_hostname == replica.edl_host and system.cmr_base_url == replica.cmr_base_url
    assert ea.status(system) == {"Earthdata Login": "OK", "Common Metadata Repository": "OK"}

    _token_login(ea, replica, monkeypatch)
    datasets = ea.search_datasets(short_name="GLDAS_NOAH025_3H")
    assert [d["umm"]["Version"] for d in datasets] == ["2.1"]
    assert datasets[0]["meta"]["provider-id"] == "GES_DISC"


# -- GLDAS, clock, CMR protocol --------------------------------------------------------------------


def test_gldas_search_and_download(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _token_login(ea, replica, monkeypatch)
    results = ea.search_data(
        short_name="GLDAS_NOAH025_3H",
        version="2.1",
        temporal=(GLDAS_DAY, GLDAS_DAY),
        bounding_box=BOX,
    )
    names = [
        g["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"] for g in results
    ]
    assert names == [f"GLDAS_NOAH025_3H.A20240605.{h:02d}00.021.nc4" for h in range(0, 24, 3)]
    assert {g["meta"]["provider-id"] for g in results} == {"GES_DISC"}
    chosen = results[:2]
    files = ea.download(chosen, tmp_path / "gldas")
    for granule, path in zip(chosen, sorted(files), strict=True):
        info = granule["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]
        assert path.name == info["Name"] and path.stat().st_size == info["SizeInBytes"]
        assert "/data/GLDAS/GLDAS_NOAH025_3H.2.1/2024/157/" in granule.data_links()[0]
    with netCDF4.Dataset(sorted(files)[0]) as nc:
        assert nc["SoilMoi0_10cm_inst"].shape == (1, 600, 1440)


def test_clock_limits_listing_and_downloads(replica: EarthdataReplica) -> None:
    newest = replica.clock.newest("smap")
    window = f"{newest - timedelta(days=1):%Y-%m-%d}T00:00:00Z,{TODAY:%Y-%m-%d}T23:59:59Z"
    first = _cmr_items(replica, short_name="SPL3SMP_E", page_size="0", **{"temporal[]": window})
    assert first.headers["CMR-Hits"] == "2" and first.json()["items"] == []
    unpublished = newest + timedelta(days=1)
    assert (
        requests.get(
            _smap_url(replica, unpublished), headers=_bearer(replica), timeout=30
        ).status_code
        == 404
    )
    gldas = _cmr_items(
        replica,
        short_name="GLDAS_NOAH025_3H",
        page_size="0",
        **{"temporal[]": "2024-06-06T00:00:00Z,"},
    )
    assert gldas.headers["CMR-Hits"] == "0"

    replica.clock.advance(1)
    again = _cmr_items(replica, short_name="SPL3SMP_E", page_size="0", **{"temporal[]": window})
    assert again.headers["CMR-Hits"] == "3"
    response = requests.get(_smap_url(replica, unpublished), headers=_bearer(replica), timeout=120)
    assert response.status_code == 200 and response.content.startswith(H5_SIGNATURE)


def test_cmr_search_after_paging_and_errors(replica: EarthdataReplica) -> None:
    window = "2024-07-14T00:00:00Z,2024-07-18T23:59:59Z"
    params = {"short_name": "SPL3SMP_E", "version": "006", "temporal[]": window, "page_size": "10"}
    seen: list[str] = []
    headers: dict[str, str] = {}
    for _ in range(5):
        r = requests.get(
            replica.cmr_base_url + "granules.umm_json", params=params, headers=headers, timeout=60
        )
        assert r.status_code == 200 and r.headers["CMR-Hits"] == "5"
        items = r.json()["items"]
        if not items:
            assert "CMR-Search-After" not in r.headers
            break
        assert len(items) <= 2  # the replica's max_page_size
        seen += [i["meta"]["concept-id"] for i in items]
        headers["CMR-Search-After"] = r.headers["CMR-Search-After"]
    assert len(seen) == len(set(seen)) == 5

    bad = _cmr_items(replica, short_name="SPL3SMP_E", polygon="1,2,3,4", page_size="abc")
    assert bad.status_code == 400
    errors = bad.json()["errors"]
    assert "Parameter [polygon] was not recognized." in errors
    assert any("page_size" in e for e in errors)
    assert _cmr_items(replica, version="006").status_code == 400  # no collection filter
    assert _cmr_items(replica, short_name="SPL3SMP_E", **{"temporal[]": "July"}).status_code == 400
    south = _cmr_items(replica, short_name="GLDAS_NOAH025_3H", bounding_box="-10,-80,10,-70")
    assert south.headers["CMR-Hits"] == "0"  # GLDAS stops at 60 S
    # CMR string parameters ignore case by default; wildcards need the pattern option
    assert (
        _cmr_items(replica, short_name="spl3smp_e", **{"temporal[]": window}).headers["CMR-Hits"]
        == "5"
    )
    picked = _cmr_items(
        replica,
        short_name="SPL3SMP_E",
        readable_granule_name="*_2024071[67]_*",
        **{"options[readable_granule_name][pattern]": "true"},
    )
    days = [
        i["umm"]["TemporalExtent"]["RangeDateTime"]["BeginningDateTime"][:10]
        for i in picked.json()["items"]
    ]
    assert days == ["2024-07-16", "2024-07-17"]


def test_data_host_auth_head_range_and_single_generation(
    replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _smap_url(replica, date(2024, 7, 1))
    assert requests.get(url, timeout=10).status_code == 401
    wrong = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and "eula" not in wrong.text.lower()
    assert (
        requests.get(url, auth=(replica.username, replica.password), timeout=10).status_code == 401
    )

    calls: list[str] = []
    real_write = granules_module._write_granule

    def counting(world: Any, granule: Any, path: Path) -> None:
        calls.append(granule.name)
        real_write(world, granule, path)

    monkeypatch.setattr(granules_module, "_write_granule", counting)
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(requests.head(url, headers=_bearer(replica), timeout=120).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4 and len(calls) == 1
    head = requests.head(url, headers=_bearer(replica), timeout=10)
    size = int(head.headers["Content-Length"])
    part = requests.get(url, headers={**_bearer(replica), "Range": "bytes=0-7"}, timeout=10)
    assert part.status_code == 206 and part.content == H5_SIGNATURE
    assert part.headers["Content-Range"] == f"bytes 0-7/{size}"
    assert (
        requests.get(
            url.replace("_001.h5", "_002.h5"), headers=_bearer(replica), timeout=10
        ).status_code
        == 404
    )
    # the world has M36 retrievals, so SPL3SMP V009 is served too
    m36 = _cmr_items(replica, short_name="SPL3SMP", version="009", **{"temporal[]": "2024-07-18,"})
    (item,) = m36.json()["items"]
    link = item["umm"]["RelatedUrls"][0]["URL"]
    assert link.endswith("/SMAP/SPL3SMP.009/2024.07.18/SMAP_L3_SM_P_20240718_R19240_001.h5")
    m36_head = requests.head(link, headers=_bearer(replica), timeout=60)
    size = item["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["SizeInBytes"]
    assert int(m36_head.headers["Content-Length"]) == size


# -- faults --------------------------------------------------------------------------------------


def test_eula_fault_makes_earthaccess_raise_eula_not_accepted(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from earthaccess.exceptions import EulaNotAccepted

    _token_login(ea, replica, monkeypatch)
    results = ea.search_data(
        short_name="SPL3SMP_E", version="006", temporal=("2024-07-18", "2024-07-18")
    )
    replica.faults.add(Fault("eula", path=r"\.h5$", times=-1))
    with pytest.raises(EulaNotAccepted):
        ea.download(results, tmp_path / "eula")
    # earthaccess retries even a EULA refusal: three attempts
    assert replica.data.log.count(path=r"\.h5$", status=403) == 3
    assert not list((tmp_path / "eula").glob("*"))


def test_status_faults_carry_retry_after(replica: EarthdataReplica) -> None:
    url = _smap_url(replica, date(2024, 7, 18))
    replica.faults.add(Fault("status", path=r"\.h5$", status=503, retry_after=7))
    replica.faults.add(Fault("status", path=r"granules", status=429, retry_after=2.5))
    unavailable = requests.get(url, headers=_bearer(replica), timeout=10)
    assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "7"
    limited = _cmr_items(replica, short_name="SPL3SMP_E")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2.5"
    assert "errors" in limited.json()  # CMR-style error body
    assert requests.get(url, headers=_bearer(replica), timeout=60).status_code == 200


def test_reset_and_truncated_transfers(replica: EarthdataReplica) -> None:
    url = _smap_url(replica, date(2024, 7, 18))
    replica.faults.add(Fault("reset", path=r"\.h5$"))
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, headers=_bearer(replica), timeout=10)

    replica.faults.add(Fault("truncate", path=r"\.h5$"))
    received = 0
    with requests.get(url, headers=_bearer(replica), stream=True, timeout=30) as r:
        announced = int(r.headers["Content-Length"])
        with pytest.raises(requests.exceptions.RequestException):
            for chunk in r.iter_content(1 << 16):
                received += len(chunk)
    assert 0 < received < announced
    assert replica.data.log.count(path=r"\.h5$", status=0) == 1  # the reset


def test_corrupt_download_is_not_hdf5_and_truncation_is_retried(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _token_login(ea, replica, monkeypatch)
    results = ea.search_data(
        short_name="SPL3SMP_E", version="006", temporal=("2024-07-17", "2024-07-18")
    )
    size = {
        g["umm"]["DataGranule"]["ArchiveAndDistributionInformation"][0]["Name"]: g["umm"][
            "DataGranule"
        ]["ArchiveAndDistributionInformation"][0]["SizeInBytes"]
        for g in results
    }
    replica.faults.add(Fault("corrupt", path=r"20240717_R19240_001\.h5$"))
    replica.faults.add(Fault("truncate", path=r"20240718_R19240_001\.h5$"))
    files = {p.name: p for p in ea.download(results, tmp_path / "faulty", threads=1)}
    corrupt = files["SMAP_L3_SM_P_E_20240717_R19240_001.h5"]
    assert corrupt.stat().st_size == size[corrupt.name]  # earthaccess checks nothing
    with pytest.raises(OSError):
        h5py.File(corrupt, "r")
    retried = files["SMAP_L3_SM_P_E_20240718_R19240_001.h5"]
    assert retried.stat().st_size == size[retried.name]
    with h5py.File(retried, "r") as f:
        assert "Soil_Moisture_Retrieval_Data_PM" in f
    log = replica.data.log
    assert log.count(method="GET", path="20240718_R19240_001", status=200) == 2  # cut, then whole
    assert log.count(method="GET", path=r"\.h5$") == 3


def test_expired_token_fails_search_and_download(
    ea: Any, replica: EarthdataReplica, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from earthaccess.exceptions import DownloadFailure, EulaNotAccepted

    _token_login(ea, replica, monkeypatch)
    results = ea.search_data(short_name="SPL3SMP_E", temporal=("2024-07-18", "2024-07-18"))
    replica.expire_token()
    with pytest.raises(RuntimeError, match="token_expired"):
        ea.search_data(short_name="SPL3SMP_E", temporal=("2024-07-18", "2024-07-18"))
    with pytest.raises(DownloadFailure, match="401") as caught:
        ea.download(results, tmp_path / "expired")
    assert not isinstance(caught.value, EulaNotAccepted)
