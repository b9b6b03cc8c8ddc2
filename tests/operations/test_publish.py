"""Publishing: two valid COGs (float32 analysis and uncertainty, uint8 flags and observation
count) on the region's grid holding the state's values exactly, and a STAC catalog that pystac
loads, with the projection and raster extensions, updated day by day."""

from __future__ import annotations

import functools
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
from smda.storage.cog import COGS, DATA_COG, FLAGS_COG
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


@pytest.mark.parametrize("spec", COGS, ids=lambda s: s.key)
def test_cogs_are_valid(published: tuple[Publisher, xr.Dataset], spec: object) -> None:
    publisher, _ = published
    valid, errors, warnings = cog_validate(publisher.cog_path(D0, spec), quiet=True)  # type: ignore[arg-type]
    assert valid and errors == [] and warnings == []


def test_cogs_are_on_the_region_grid(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    grid = region_grid()
    for spec in COGS:
        with rasterio.open(publisher.cog_path(D0, spec)) as src:
            assert src.crs.to_epsg() == 4326
            assert src.res == (0.25, 0.25)
            assert (src.width, src.height) == (grid.ncols, grid.nrows)
            b = grid.bounds
            assert tuple(src.bounds) == (b.west, b.south, b.east, b.north) == (-100, 35, -99, 36)
            assert src.transform.e < 0  # north-up
            assert src.count == len(spec.bands) and set(src.dtypes) == {spec.dtype}
            assert src.block_shapes == [(256, 256)] * len(spec.bands)
            assert src.compression is not None and src.compression.name == "deflate"
    with rasterio.open(publisher.cog_path(D0, DATA_COG)) as src:
        assert src.dtypes == ("float32", "float32") and np.isnan(src.nodata)
    with rasterio.open(publisher.cog_path(D0, FLAGS_COG)) as src:
        assert src.dtypes == ("uint8", "uint8") and src.nodata == 255


def test_values_round_trip_exactly(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, ds = published
    sea = sea_mask(region_grid())
    with rasterio.open(publisher.cog_path(D0, DATA_COG)) as src:
        data = src.read()
    for i, band in enumerate(DATA_COG.bands):
        expected = ds[band.name].values.astype(np.float32)
        expected[sea] = np.nan
        np.testing.assert_array_equal(data[i], expected)  # bit-exact float32, NaN over sea
    np.testing.assert_array_equal(data[0], ds["analysis"].values)
    assert np.isnan(data[:, sea]).all() and np.isfinite(data[:, ~sea]).all()
    with rasterio.open(publisher.cog_path(D0, FLAGS_COG)) as src:
        ints = src.read()
    assert ints.dtype == np.uint8
    for i, band in enumerate(FLAGS_COG.bands):
        np.testing.assert_array_equal(ints[i][~sea], ds[band.name].values[~sea])
    assert (ints[:, sea] == 255).all()
    assert ((ints[0][~sea] & 1) == 1).all() and (ints[0][~sea] & 2).any()  # land, some nudged


def test_bands_are_described(published: tuple[Publisher, xr.Dataset]) -> None:
    """GDAL band descriptions and units (what gdalinfo and QGIS show), band tags, dataset tags."""
    publisher, _ = published
    with rasterio.open(publisher.cog_path(D0, DATA_COG)) as src:
        assert src.descriptions == ("analysis", "uncertainty")
        assert src.units == ("m3 m-3", "m3 m-3")
        assert [src.tags(i)["units"] for i in (1, 2)] == ["m3 m-3", "m3 m-3"]
        tags = src.tags()
    with rasterio.open(publisher.cog_path(D0, FLAGS_COG)) as src:
        assert src.descriptions == ("flags", "obs_count")
        assert src.units == ("1", "1")
        assert src.tags(1)["FLAG_OBS_UNMATCHED"].startswith("4: a SMAP retrieval existed")
        assert "2 assimilated" in src.tags(1)["long_name"]
        assert src.tags() == tags
    assert tags["SMDA_DAY"] == "2024-07-01"
    assert tags["SMDA_MODEL_VERSION"] == "0123456789abcdef"
    assert json.loads(tags["SMDA_PROVENANCE"]) == public_provenance(SECRET_PROVENANCE)


def test_no_secrets_are_published(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    texts = [publisher.item_path(D0).read_text()]
    texts += [json.dumps(_cog_tags(publisher.cog_path(D0, spec))) for spec in COGS]
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
        coarse = src.read(1, out_shape=(140, 140))  # the overview: averages of 2 × 2 cells
    flags_cog = publisher.cog_path(D0, FLAGS_COG)
    valid, errors, _ = cog_validate(flags_cog, quiet=True)
    assert valid and errors == []
    with rasterio.open(flags_cog) as src:
        assert src.overviews(1) == [2]
        flags = src.read(1, out_shape=(140, 140))  # nearest: flag values that exist
    analysis = ds["analysis"].values
    blocks = analysis.reshape(140, 2, 140, 2).swapaxes(1, 2).reshape(140, 140, 4)
    full = np.isfinite(blocks).all(axis=2)
    np.testing.assert_allclose(coarse[full], blocks[full].mean(axis=1), rtol=1e-6)
    assert set(np.unique(flags)) <= set(np.unique(ds["flags"].values)) | {255}


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
    assert [b.unit for b in bands] == ["m3 m-3", "m3 m-3"]
    assert {(b.data_type, b.nodata, b.scale) for b in bands} == {("float32", "nan", 1.0)}
    ints = RasterExtension.ext(item.assets["quality"]).bands or []
    assert [b.unit for b in ints] == ["1", "1"]
    assert {(b.data_type, b.nodata, b.scale) for b in ints} == {("uint8", 255, 1.0)}
    names = [b["name"] for spec in COGS for b in item.assets[spec.key].extra_fields["bands"]]
    assert names == [b.name for b in BANDS] == ["analysis", "uncertainty", "flags", "obs_count"]
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
        Path("cog/2024/smda_sm_20240701_flags.tif"),
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
        assert not any(p.exists() for p in publisher.files(day))
    collection = pystac.Collection.from_file(str(publisher.collection_path))
    assert [t.date() if t else None for t in collection.extent.temporal.intervals[0]] == [D0, D0]
    assert len(list(collection.get_items())) == 1


def test_base_url_makes_every_href_an_absolute_url(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub", base_url="https://data.example.org/smda/")
    out = publisher.publish(D0, state(tmp_path), provenance())
    base = "https://data.example.org/smda"
    item = json.loads(out.item.read_text())
    assert item["assets"]["data"]["href"] == f"{base}/cog/2024/smda_sm_20240701.tif"
    assert item["assets"]["quality"]["href"] == f"{base}/cog/2024/smda_sm_20240701_flags.tif"
    links = {link["rel"]: link["href"] for link in item["links"] if link["rel"] != "license"}
    assert links == {
        "self": f"{base}/stac/smda-sm/2024/smda_sm_20240701.json",
        "root": f"{base}/stac/catalog.json",
        "parent": f"{base}/stac/smda-sm/collection.json",
        "collection": f"{base}/stac/smda-sm/collection.json",
    }
    collection = json.loads(publisher.collection_path.read_text())
    catalog = json.loads(publisher.catalog_path.read_text())
    hrefs = [link["href"] for doc in (collection, catalog) for link in doc["links"]]
    assert all(h.startswith("https://") for h in hrefs)
    assert f"{base}/stac/smda-sm/2024/smda_sm_20240701.json" in hrefs  # the item link
    assert f"{base}/stac/smda-sm/collection.json" in hrefs  # the catalog's child


def test_without_base_url_every_link_is_relative(published: tuple[Publisher, xr.Dataset]) -> None:
    publisher, _ = published
    for path in (publisher.item_path(D0), publisher.collection_path, publisher.catalog_path):
        document = json.loads(path.read_text())
        hrefs = [link["href"] for link in document["links"] if link["rel"] != "license"]
        hrefs += [asset["href"] for asset in document.get("assets", {}).values()]
        assert hrefs and all(h.startswith(("./", "../")) for h in hrefs), path


@pytest.mark.parametrize("failing", [1, 2], ids=["data COG", "flags COG"])
def test_failed_cog_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    calls = []
    copy = smda.storage.cog.gdal_copy

    def crash(src: object, dst: Path, *args: object, **kwargs: object) -> None:
        calls.append(dst)
        if len(calls) < failing:
            copy(src, dst, *args, **kwargs)
            return
        Path(dst).write_bytes(b"half a tiff")
        raise OSError("disk full")

    monkeypatch.setattr(smda.storage.cog, "gdal_copy", crash)
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


def test_failed_quicklook_removes_the_cogs_written_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COGs and the quick-look are written concurrently: a failing quick-look still leaves
    no file of the day (the COGs that finished are removed) and raises its own error."""
    import smda.storage.quicklook

    def crash(*args: object, **kwargs: object) -> Path:
        raise OSError("quick-look disk full")

    monkeypatch.setattr(smda.storage.quicklook, "render_quicklook", crash)
    publisher = Publisher(tmp_path / "pub")
    with pytest.raises(OSError, match="quick-look disk full"):
        publisher.publish(D0, state(tmp_path), provenance())
    assert [p for p in publisher.root.rglob("*") if p.is_file()] == []
    assert publisher.published_days() == []


def test_concurrent_writers_give_the_same_bytes_as_one_at_a_time(
    tmp_path: Path, published: tuple[Publisher, xr.Dataset], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing with the files written one after the other (a single worker) gives the same
    bytes as the concurrent publish of the fixture."""
    import smda.storage.publish as publish

    concurrent, ds = published
    serial = functools.partial(publish.ThreadPoolExecutor, 1)
    monkeypatch.setattr(publish, "ThreadPoolExecutor", lambda n, **kw: serial(**kw))
    one = Publisher(tmp_path / "serial")
    one.publish(D0, ds, SECRET_PROVENANCE)
    for path in (*[concurrent.cog_path(D0, s) for s in COGS], concurrent.quicklook_path(D0)):
        other = one.root / path.relative_to(concurrent.root)
        assert other.read_bytes() == path.read_bytes(), path.name
