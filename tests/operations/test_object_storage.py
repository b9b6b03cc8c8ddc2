"""State and products on object storage: a real S3-compatible server (moto's server mode) on
loopback, reached through s3fs and GDAL's ``/vsis3/`` with the endpoint and credentials of the
standard AWS environment variables."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fsspec
import numpy as np
import pystac
import pytest
import rasterio
import s3fs
from moto.server import ThreadedMotoServer
from ops_runtime import RUN, runtime_for
from pystac.validation import validate_dict

from smda.ops import Runtime
from smda.ops.days import backfill_days
from smda.ops.verify import verify_region
from smda.storage.cog import COGS
from smda.storage.objects import Files
from smda_twin.world import World

BUCKET = "smda-test"
DAYS = (RUN, RUN + timedelta(days=2))
PUBLIC_READ = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{BUCKET}/products/*",
        }
    ],
}
"""The bucket's products prefix is served over HTTP (anonymous reads): the public URL."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """A moto S3 server on loopback with one bucket; its URL."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name, value in {
                "AWS_ENDPOINT_URL": url,
                "AWS_ACCESS_KEY_ID": "smda-test",
                "AWS_SECRET_ACCESS_KEY": "smda-test-secret",
                "AWS_DEFAULT_REGION": "us-east-1",
            }.items():
                mp.setenv(name, value)
            s3fs.S3FileSystem.clear_instance_cache()
            fs = fsspec.filesystem("s3")
            fs.mkdir(BUCKET)
            fs.call_s3("put_bucket_policy", Bucket=BUCKET, Policy=json.dumps(PUBLIC_READ))
            yield url
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def _s3() -> s3fs.S3FileSystem:
    return fsspec.filesystem("s3", skip_instance_cache=True)  # a reader of its own: no cache


def _local_files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _s3_files(url: str) -> dict[str, str]:
    fs, base = fsspec.core.url_to_fs(url)
    return {
        str(key)[len(base) + 1 :]: hashlib.sha256(fs.cat_file(key)).hexdigest()
        for key in fs.find(base)
    }


@pytest.fixture(scope="module")
def runs(
    endpoint: str, template: Path, world: World, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Runtime, Runtime]:
    """The same short backfill run locally and with state and products on S3 (both with the
    bucket's HTTP endpoint as the public URL of the products)."""
    public = f"{endpoint}/{BUCKET}/products"
    local_dir, s3_dir = tmp_path_factory.mktemp("local"), tmp_path_factory.mktemp("s3")
    shutil.copytree(template, local_dir / "data")
    shutil.copytree(template, s3_dir / "data")
    local = runtime_for(local_dir / "data", world, products_public_url=public)
    remote = runtime_for(
        s3_dir / "data",
        world,
        state_url=f"s3://{BUCKET}/state",
        products_url=f"s3://{BUCKET}/products",
        products_public_url=public,
    )
    backfill_days(local, *DAYS)
    backfill_days(remote, *DAYS)
    return local, remote


def test_a_backfill_on_s3_writes_the_local_runs_bytes(runs: tuple[Runtime, Runtime]) -> None:
    local, remote = runs
    assert remote.publisher.url.startswith("s3://") and not remote.chain.is_local
    state, products = _s3_files(remote.chain.url), _s3_files(remote.publisher.url)
    assert state == _local_files(Path(local.chain.url))
    assert products == _local_files(local.publisher.root)
    days = [DAYS[0] + timedelta(days=i) for i in range(3)]
    assert {f"cog/2015/smda_sm_{d:%Y%m%d}{s.suffix}.tif" for d in days for s in COGS} <= set(
        products
    )
    assert not any(".part" in key for key in [*state, *products])  # no temporary key left
    assert not (Path(remote.settings.data_dir) / "products").exists()  # nothing local


def test_the_state_chain_on_s3_reads_back_against_its_sidecar_digests(
    runs: tuple[Runtime, Runtime],
) -> None:
    local, remote = runs
    assert (
        remote.chain.days() == local.chain.days() == [DAYS[0] + timedelta(days=i) for i in range(3)]
    )
    for day in remote.chain.days():
        assert remote.chain.problem(day) is None
        sidecar = json.loads(
            _s3().cat_file(remote.chain.location(day).removesuffix(".nc") + ".json")
        )
        data = _s3().cat_file(remote.chain.location(day))
        assert sidecar["sha256"] == hashlib.sha256(data).hexdigest() == remote.chain.digest(day)
        np.testing.assert_array_equal(
            remote.chain.read(day)["analysis"].values, local.chain.read(day)["analysis"].values
        )


def test_verify_and_the_published_checksums_hold_on_s3(runs: tuple[Runtime, Runtime]) -> None:
    _, remote = runs
    pub = remote.publisher
    assert pub.published_days() == pub.days_on_disk() == remote.chain.days()
    assert all(pub.problem(day) is None for day in pub.published_days())
    report = verify_region(remote)
    assert report.found == [] and report.checked["published"] == 3
    assert pub.catalog_href == f"{pub.base_url}/stac/catalog.json"
    assert pub.location(pub.cog_path(RUN)).startswith(f"s3://{BUCKET}/products/")


def test_the_stac_catalog_on_s3_loads_over_http_and_validates(
    runs: tuple[Runtime, Runtime],
) -> None:
    _, remote = runs
    catalog = pystac.Catalog.from_file(remote.publisher.catalog_href)  # the bucket's endpoint
    items = list(catalog.get_items(recursive=True))
    assert sorted(item.id for item in items) == [f"smda_sm_{d:%Y%m%d}" for d in remote.chain.days()]
    collection = catalog.get_child("smda-sm")
    assert collection is not None
    for document in [catalog.to_dict(), collection.to_dict(), *(i.to_dict() for i in items)]:
        validate_dict(document, extensions=[])  # the core schemas (pystac's offline copies)
    href = items[0].assets["data"].href
    assert href.startswith(f"{remote.publisher.base_url}/cog/")
    with fsspec.open(href, "rb") as fh:  # the asset is served where its href says
        assert (
            hashlib.sha256(fh.read()).digest().hex()
            in items[0].assets["data"].extra_fields["file:checksum"]
        )


def test_a_cog_on_s3_reads_through_gdal_vsis3(runs: tuple[Runtime, Runtime], endpoint: str) -> None:
    local, remote = runs
    key = remote.publisher.location(remote.publisher.cog_path(RUN)).removeprefix("s3://")
    env = rasterio.Env(
        AWS_S3_ENDPOINT=endpoint.removeprefix("http://"),
        AWS_HTTPS="NO",
        AWS_VIRTUAL_HOSTING="FALSE",
    )  # the credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the environment
    with env, rasterio.open(f"/vsis3/{key}") as src:
        remote_bands, descriptions = src.read(), src.descriptions
        assert src.driver == "GTiff" and src.profile["tiled"]
    with rasterio.open(local.publisher.cog_path(RUN)) as src:
        np.testing.assert_array_equal(remote_bands, src.read())
        assert descriptions == src.descriptions == ("analysis", "uncertainty")


def test_unpublishing_on_s3_removes_the_days_objects(runs: tuple[Runtime, Runtime]) -> None:
    _, remote = runs
    pub, last = remote.publisher, remote.chain.days()[-1]
    assert pub.unpublish([last]) == [last]
    assert last not in pub.published_days()
    assert not any(_s3().exists(pub.location(p)) for p in pub.files(last))
    assert pub.problem(last) == "STAC item missing"


def test_a_failed_upload_leaves_no_object_and_no_temporary_key(endpoint: str) -> None:
    files = Files.at(f"s3://{BUCKET}/atomic")
    target = files.root / "cog" / "x.tif"
    with pytest.raises(RuntimeError), files.writing(target) as out:
        out.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert not files.exists(target) and _s3().find(f"{BUCKET}/atomic") == []
    files.write_bytes(target, b"old")
    with files.writing(target) as out:
        out.write_bytes(b"new")
        assert files.read_bytes(target) == b"old"  # readers see the previous object meanwhile
    assert files.read_bytes(target) == b"new"
    assert _s3().find(f"{BUCKET}/atomic") == [f"{BUCKET}/atomic/cog/x.tif"]
