"""Publishing: a valid COG on the region's grid holding the state's values exactly, and a STAC
catalog that pystac loads, with the projection and raster extensions, updated day by day."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
import xarray as xr
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterExtension
from pystac.validation import validate_dict
from rio_cogeo.cogeo import cog_validate
from state_helpers import provenance, region_grid, sea_mask, small_result, small_uncertainty

import smda.storage.cog
from smda.geo.grid import BBox, Grid
from smda.storage.chain import StateChain
from smda.storage.publish import BANDS, Publisher, public_provenance

D0 = date(2024, 7, 1)
SECRET_PROVENANCE = provenance(
    token="s3cr3t-t0ken", source_url="https://user:hunter2@data.example.org/era5"
)


def state(tmp_path: Path, day: date = D0, grid: Grid | None = None) -> xr.Dataset:
    """The day's state as the chain returns it."""
    chain = StateChain(tmp_path / "state")
    result = small_result(day, grid=grid)
    chain.write(result, uncertainty=small_uncertainty(result), provenance=provenance())
    return chain.read(day)


@pytest.fixture
def published(tmp_path: Path) -> tuple[Publisher, xr.Dataset]:
    publisher = Publisher(tmp_path / "pub")
    ds = state(tmp_path)
    publisher.publish(D0, ds, SECRET_PROVENANCE)
    return publisher, ds


def test_cog_is_valid(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    valid, errors, warnings = cog_validate(publisher.cog_path(D0), quiet=True)
    assert valid and errors == [] and warnings == []


def test_cog_is_on_the_region_grid(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    grid = region_grid()
    with rasterio.open(publisher.cog_path(D0)) as src:
        assert src.crs.to_epsg() == 4326
        assert src.res == (0.25, 0.25)
        assert (src.width, src.height) == (grid.ncols, grid.nrows)
        b = grid.bounds
        assert tuple(src.bounds) == (b.west, b.south, b.east, b.north) == (-100, 35, -99, 36)
        assert src.transform.e < 0  # north-up
        assert src.count == len(BANDS) and set(src.dtypes) == {"float32"}
        assert src.block_shapes == [(256, 256)] * len(BANDS)
        assert src.compression is not None and src.compression.name == "deflate"
        assert np.isnan(src.nodata)


def test_values_round_trip_exactly(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, ds = published
    sea = sea_mask(region_grid())
    with rasterio.open(publisher.cog_path(D0)) as src:
        data = src.read()
    for i, band in enumerate(BANDS):
        expected = ds[band.name].values.astype(np.float32)
        expected[sea] = np.nan
        np.testing.assert_array_equal(data[i], expected)  # bit-exact float32, NaN over sea
    np.testing.assert_array_equal(data[0], ds["analysis"].values)
    assert np.isnan(data[:, sea]).all() and np.isfinite(data[:, ~sea]).all()


def test_bands_are_described(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    with rasterio.open(publisher.cog_path(D0)) as src:
        assert src.descriptions == tuple(b.name for b in BANDS)
        assert [src.tags(i)["units"] for i in (1, 2, 3, 4)] == ["m3 m-3", "m3 m-3", "1", "1"]
        assert "assimilated" in src.tags(4)["long_name"]
        tags = src.tags()
    assert tags["SMDA_DAY"] == "2024-07-01"
    assert tags["SMDA_MODEL_VERSION"] == "0123456789abcdef"
    assert json.loads(tags["SMDA_PROVENANCE"]) == public_provenance(SECRET_PROVENANCE)


def test_no_secrets_are_published(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    texts = [publisher.item_path(D0).read_text(), json.dumps(_cog_tags(publisher.cog_path(D0)))]
    for text in texts:
        assert "s3cr3t" not in text and "hunter2" not in text
        assert "https://data.example.org/era5" in text
    given = {
        "auth": {"user": "x"},
        "inputs": [{"cds_api_key": "k", "v": 1}],
        "author": "kept",
        "url": "https://h.example/f.nc?a=1&X-Amz-Signature=zz&access_token=t",
    }
    assert public_provenance(given) == {
        "author": "kept",
        "inputs": [{"v": 1}],
        "url": "https://h.example/f.nc?a=1",
    }


def _cog_tags(path: Path) -> dict[str, str]:
    with rasterio.open(path) as src:
        return dict(src.tags())


def test_large_region_has_overviews(tmp_path: Path) -> None:
    grid = region_grid(BBox(-130, -20, -60, 50))  # 280 × 280 cells: more than one tile
    publisher = Publisher(tmp_path / "pub")
    ds = state(tmp_path, grid=grid)
    out = publisher.publish(D0, ds, provenance())
    valid, errors, _ = cog_validate(out.cog, quiet=True)
    assert valid and errors == []
    with rasterio.open(out.cog) as src:
        assert src.overviews(1) == [2]
        assert src.block_shapes[0] == (256, 256)
        np.testing.assert_array_equal(src.read(1), ds["analysis"].values)


def test_antimeridian_region(tmp_path: Path) -> None:
    grid = region_grid(BBox(179, 0, -179, 1))  # 4 × 8 cells across 180°
    publisher = Publisher(tmp_path / "pub")
    ds = state(tmp_path, grid=grid)
    out = publisher.publish(D0, ds, provenance())
    with rasterio.open(out.cog) as src:
        assert tuple(src.bounds) == (179.0, 0.0, 181.0, 1.0)
        np.testing.assert_array_equal(src.read(1), ds["analysis"].values)
    item = pystac.Item.from_file(out.item)
    assert item.bbox == [179.0, 0.0, -179.0, 1.0]
    assert item.geometry is not None and item.geometry["type"] == "MultiPolygon"


def test_south_up_input_is_published_north_up(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    ds = state(tmp_path)
    out = publisher.publish(D0, ds.sortby("lat"), provenance())
    with rasterio.open(out.cog) as src:
        np.testing.assert_array_equal(src.read(1), ds["analysis"].values)


def test_stac_catalog_loads_and_links_the_cogs(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    days = [D0, D0 + timedelta(days=1)]
    for day in days:
        publisher.publish(day, state(tmp_path, day), provenance())
    catalog = pystac.Catalog.from_file(str(publisher.catalog_path))
    collection = catalog.get_child("smda-sm")
    assert isinstance(collection, pystac.Collection)
    assert collection.license == "other"
    assert {p.name for p in collection.providers or []} >= {"smda", "GloH2O (MSWEP)"}
    interval = collection.extent.temporal.intervals[0]
    assert [t.date() if t else None for t in interval] == days
    assert collection.extent.spatial.bboxes[0] == [-100.0, 35.0, -99.0, 36.0]
    items = sorted(collection.get_items(), key=lambda i: i.id)
    assert [i.id for i in items] == ["smda_sm_20240701", "smda_sm_20240702"]
    for item, day in zip(items, days, strict=True):
        asset = item.assets["data"]
        assert Path(asset.get_absolute_href() or "") == publisher.cog_path(day)
        assert publisher.cog_path(day).exists()
        assert asset.media_type == pystac.MediaType.COG and asset.roles == ["data"]
        assert item.get_root() is not None and item.collection_id == "smda-sm"


def test_items_carry_projection_and_raster_extensions(
    published: tuple[Publisher, xr.Dataset],
) -> None:
    publisher, _ = published
    item = pystac.Item.from_file(str(publisher.item_path(D0)))
    grid = region_grid()
    assert ProjectionExtension.has_extension(item) and RasterExtension.has_extension(item)
    proj = ProjectionExtension.ext(item)
    assert proj.epsg == 4326 and proj.code == "EPSG:4326"
    assert proj.shape == [grid.nrows, grid.ncols]
    assert proj.transform == [0.25, 0.0, -100.0, 0.0, -0.25, 36.0]
    bands = RasterExtension.ext(item.assets["data"]).bands or []
    assert [b.unit for b in bands] == [b.unit for b in BANDS]
    assert {(b.data_type, b.nodata, b.scale) for b in bands} == {("float32", "nan", 1.0)}
    assert item.properties["smda:provenance"]["model_version"] == "0123456789abcdef"
    assert item.properties["start_datetime"] == "2024-07-01T00:00:00Z"
    assert "created" not in item.properties and "updated" not in item.properties


def test_documents_validate_against_the_core_schemas_offline(
    published: tuple[Publisher, xr.Dataset],
) -> None:
    """pystac's bundled STAC 1.1.0 schemas (no download: extensions=[]); the extension
    fields are checked by the test above."""
    publisher, _ = published
    for path in (publisher.item_path(D0), publisher.collection_path, publisher.catalog_path):
        validate_dict(json.loads(path.read_text()), extensions=[])


def test_rerun_is_byte_identical(tmp_path: Path) -> None:
    ds = state(tmp_path)
    roots = [Publisher(tmp_path / "a"), Publisher(tmp_path / "b")]
    for publisher in [*roots, roots[0]]:
        publisher.publish(D0, ds, provenance())
    for path in (
        Path("cog/2024/smda_sm_20240701.tif"),
        Path("stac/smda-sm/2024/smda_sm_20240701.json"),
        Path("stac/smda-sm/collection.json"),
        Path("stac/catalog.json"),
    ):
        assert (roots[0].root / path).read_bytes() == (roots[1].root / path).read_bytes()


def test_a_new_day_leaves_earlier_items_untouched(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    publisher.publish(D0, state(tmp_path), provenance())
    before = publisher.item_path(D0).stat()
    day = D0 + timedelta(days=1)
    publisher.publish(day, state(tmp_path, day), provenance())
    after = publisher.item_path(D0).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert publisher.published_days() == [D0, day]


def test_unpublish(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    days = [D0 + timedelta(days=i) for i in range(3)]
    for day in days:
        publisher.publish(day, state(tmp_path, day), provenance())
    assert publisher.unpublish([*days[1:], date(2030, 1, 1)]) == days[1:]
    assert publisher.published_days() == days[:1]
    for day in days[1:]:
        assert not publisher.cog_path(day).exists() and not publisher.item_path(day).exists()
    collection = pystac.Collection.from_file(str(publisher.collection_path))
    assert [t.date() if t else None for t in collection.extent.temporal.intervals[0]] == [D0, D0]
    assert len(list(collection.get_items())) == 1


def test_base_url_gives_absolute_asset_and_self_links(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub", base_url="https://data.example.org/smda/")
    out = publisher.publish(D0, state(tmp_path), provenance())
    item = json.loads(out.item.read_text())
    assert item["assets"]["data"]["href"] == (
        "https://data.example.org/smda/cog/2024/smda_sm_20240701.tif"
    )
    selfs = [link["href"] for link in item["links"] if link["rel"] == "self"]
    assert selfs == ["https://data.example.org/smda/stac/smda-sm/2024/smda_sm_20240701.json"]
    assert {link["href"] for link in item["links"] if link["rel"] == "root"} == {
        "../../catalog.json"
    }


def test_failed_cog_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(src: object, dst: Path, *args: object, **kwargs: object) -> None:
        Path(dst).write_bytes(b"half a tiff")
        raise OSError("disk full")

    monkeypatch.setattr(smda.storage.cog, "cog_translate", crash)
    publisher = Publisher(tmp_path / "pub")
    with pytest.raises(OSError, match="disk full"):
        publisher.publish(D0, state(tmp_path), provenance())
    assert [p for p in publisher.root.rglob("*") if p.is_file()] == []
    assert publisher.published_days() == []


def test_wrong_inputs_are_refused(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    ds = state(tmp_path)
    with pytest.raises(ValueError, match="state of 2024-07-01, not of 2024-07-02"):
        publisher.publish(D0 + timedelta(days=1), ds, provenance())
    with pytest.raises(ValueError, match=r"lacks \['uncertainty'\]"):
        publisher.publish(D0, ds.drop_vars("uncertainty"), provenance())
    shifted = ds.assign_coords(lon=ds["lon"] + 0.1)
    with pytest.raises(ValueError, match="not a north-up window of the global"):
        publisher.publish(D0, shifted, provenance())
