"""The STAC catalog as people use it: the items load as a cube with odc-stac and equal the state
files; provisional days, terms of use, item_assets and summaries; one flag table everywhere;
public URLs with ``SMDA_PRODUCTS_PUBLIC_URL``."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
from jsonschema import Draft7Validator
from ops_runtime import RUN, runtime_for
from pystac.extensions.classification import Bitfield, ClassificationExtension
from pystac.validation import validate_dict
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from state_helpers import provenance, small_result, small_uncertainty

from smda.config import Settings, load_settings
from smda.errors import ConfigError
from smda.geo.grid import Grid
from smda.ops import Runtime, backfill_days
from smda.science.flags import FLAGS
from smda.storage.chain import StateChain
from smda.storage.cog import COGS, FLAGS_COG
from smda.storage.publish import Publisher
from smda.storage.stac import SOURCES
from smda_twin.world import World

README = Path(__file__).resolve().parents[2] / "README.md"
JULY = [date(2024, 7, 1) + timedelta(days=i) for i in range(31)]
VARIABLES = ("analysis", "uncertainty", "flags", "obs_count")
GRID = Grid(0.25, 216, 300, 8, 12)  # 34–36° N, 105–102° W: 8 × 12 cells
FINAL = {"era5": {"provisional": False}, "mswep": {"provisional_days": []}}


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[StateChain, Publisher]:
    """A month of days in a state chain (forecast-only every fifth day), each published; the
    tests that take it only read it."""
    tmp_path = tmp_path_factory.mktemp("month")
    chain, publisher = StateChain(tmp_path / "state"), Publisher(tmp_path / "pub")
    for i, day in enumerate(JULY):
        result = small_result(day, grid=GRID, smap=i % 5 != 4)
        prov = provenance(inputs=FINAL if i < 20 else {"era5": {"provisional": True}})
        chain.write(result, uncertainty=small_uncertainty(result), provenance=prov)
        publisher.publish(day, chain.read(day), chain.provenance(day))
    return chain, publisher


def _items(publisher: Publisher) -> list[pystac.Item]:
    catalog = pystac.Catalog.from_file(str(publisher.catalog_path))
    return list(catalog.get_items(recursive=True))


def test_a_month_of_items_loads_with_odc_stac_as_the_state_files(
    month: tuple[StateChain, Publisher],
) -> None:
    chain, publisher = month
    cube = odc.stac.load(_items(publisher), bands=list(VARIABLES))
    # without `bands=` every band is named as in the state files (no asset key shadows a band)
    assert set(odc.stac.load(_items(publisher)[:1]).data_vars) == set(VARIABLES)
    assert [str(d)[:10] for d in cube.time.values] == [d.isoformat() for d in JULY]
    assert cube["flags"].dtype == np.uint8 and cube["obs_count"].dtype == np.uint8
    assert cube["analysis"].dtype == np.float32 and cube["uncertainty"].dtype == np.float32
    np.testing.assert_array_equal(cube.latitude.values, GRID.lats)
    np.testing.assert_array_equal(cube.longitude.values, GRID.lons)
    for day in JULY:
        state = chain.read(day).transpose("lat", "lon").sortby("lat", ascending=False)
        loaded = cube.sel(time=str(day)).squeeze()
        land = np.isfinite(state["analysis"].values)
        assert land.sum() > 0 and (~land).sum() > 0
        for name in VARIABLES:
            got, want = loaded[name].values, state[name].values
            np.testing.assert_array_equal(got[land], want[land].astype(got.dtype), err_msg=name)
        assert np.isnan(loaded["analysis"].values[~land]).all()
        assert (loaded["flags"].values[~land] == FLAGS_COG.nodata).all()
    assert ((cube["flags"] & 8) > 0).any() and ((cube["flags"] & 2) > 0).any()  # no cast needed


def test_items_say_which_days_are_provisional(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    cases = {
        "final": (FINAL, False),
        "ERA5T": ({"era5": {"provisional": True}, "mswep": {"provisional_days": []}}, True),
        "MSWEP NRT": ({"era5": {}, "mswep": {"provisional_days": ["2024-06-30"]}}, True),
    }
    chain = StateChain(tmp_path / "state")
    for i, (inputs, expected) in enumerate(cases.values()):
        day = JULY[i]
        result = small_result(day)
        chain.write(result, uncertainty=small_uncertainty(result), provenance=provenance())
        publisher.publish(day, chain.read(day), provenance(inputs=inputs))
        item = json.loads(publisher.item_path(day).read_text())
        assert item["properties"]["smda:provisional"] is expected


def test_items_and_collection_link_the_sources_terms(month: tuple[StateChain, Publisher]) -> None:
    _, publisher = month
    collection = pystac.Collection.from_file(str(publisher.collection_path))
    assert collection.license == "other"
    terms = {s.terms for s in SOURCES}
    assert any("gloh2o.org" in t for t in terms)
    for document in (collection, *_items(publisher)):
        licenses = [link for link in document.links if link.rel == "license"]
        assert {link.href for link in licenses} == terms
        assert all(link.title and "terms of use" in link.title for link in licenses)


def test_collection_describes_item_assets_and_summaries(
    month: tuple[StateChain, Publisher],
) -> None:
    _, publisher = month
    collection = json.loads(publisher.collection_path.read_text())
    assets = collection["item_assets"]
    assert (
        set(assets)
        == {spec.key for spec in COGS} | {"thumbnail"}
        == {"data", "quality", "thumbnail"}
    )
    assert assets["thumbnail"]["type"] == "image/png"
    for spec in COGS:
        assert [b["name"] for b in assets[spec.key]["bands"]] == [b.name for b in spec.bands]
        assert {b["data_type"] for b in assets[spec.key]["raster:bands"]} == {spec.dtype}
    summaries = collection["summaries"]
    assert summaries["smda:provisional"] == [False, True]
    assert [b["name"] for b in summaries["bands"]] == list(VARIABLES)
    assert summaries["smda:sources"] == [s.name for s in SOURCES]
    for item in _items(publisher):  # every item has what item_assets announce
        assert set(item.assets) == set(assets)
        for spec in COGS:
            asset = item.assets[spec.key]
            assert asset.extra_fields["raster:bands"] == assets[spec.key]["raster:bands"]
        assert item.assets["thumbnail"].roles == assets["thumbnail"]["roles"]


def _bitfields(item: pystac.Item) -> list[Bitfield]:
    flags_band = item.assets["quality"].extra_fields["raster:bands"][0]
    return [Bitfield(d) for d in flags_band["classification:bitfields"]]


def test_one_flag_table_in_stac_cog_state_and_readme(month: tuple[StateChain, Publisher]) -> None:
    chain, publisher = month
    item = _items(publisher)[0]
    assert ClassificationExtension.get_schema_uri() in item.stac_extensions
    assert "classification/v2.0.0" in ClassificationExtension.get_schema_uri()
    bitfields = _bitfields(item)
    assert [(b.offset, b.length, b.name, b.description) for b in bitfields] == [
        (f.bit, 1, f.name, f.description) for f in FLAGS
    ]
    assert all([c.value for c in b.classes] == [0, 1] for b in bitfields)
    with rasterio.open(publisher.cog_path(JULY[0], FLAGS_COG)) as src:
        tags = src.tags(1)
    assert {k: v for k, v in tags.items() if k.startswith("FLAG_")} == {
        f"FLAG_{f.name.upper()}": f"{f.mask}: {f.description}" for f in FLAGS
    }
    state = chain.read(JULY[0])
    assert list(state["flags"].attrs["flag_masks"]) == [f.mask for f in FLAGS]
    assert state["flags"].attrs["flag_meanings"].split() == [f.name for f in FLAGS]
    assert _readme_flags() == [(f.bit, f.mask, f.name, f.description) for f in FLAGS]


def _readme_flags() -> list[tuple[int, int, str, str]]:
    """The rows of README's flag table (| bit | value | name | meaning |)."""
    text = README.read_text()
    header = text.index("| bit | value | name | meaning |")
    rows = []
    for line in text[header:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        bit, value, name, meaning = (c.strip() for c in line.strip("|").split("|"))
        rows.append((int(bit), int(value), name.strip("`"), meaning))
    return rows


def test_public_url_makes_the_runs_hrefs_urls(rt: Runtime, world: World) -> None:
    public = runtime_for(Path(rt.settings.data_dir), world, products_public_url="https://x.org/p/")
    base = public.publisher.base_url
    assert base is not None
    assert re.fullmatch(r"https://x\.org/p/r0\.25_[0-9a-z_x]+", base)
    assert rt.publisher.base_url is None  # unset: today's relative tree
    backfill_days(public, RUN, RUN)
    item = json.loads(public.publisher.item_path(RUN).read_text())
    hrefs = [link["href"] for link in item["links"]] + [a["href"] for a in item["assets"].values()]
    assert all(h.startswith("https://") for h in hrefs)
    assert item["assets"]["quality"]["href"] == f"{base}/cog/2015/smda_sm_20150611_flags.tif"
    assert public.publisher.catalog_href == f"{base}/stac/catalog.json"


@pytest.mark.parametrize("bad", ["ftp://x.org/p", "data/products", "https://u:pw@x.org/p"])
def test_a_bad_public_url_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"SMDA_PRODUCTS_PUBLIC_URL: .*not an http") as error:
        load_settings(products_public_url=bad)
    assert "\n" not in str(error.value) and "pw" not in str(error.value)
    assert Settings(products_public_url="https://x.org/p/").products_public_url == "https://x.org/p"


SCHEMAS = Path(__file__).resolve().parent / "stac_schemas"


def test_documents_validate_against_the_extension_schemas_offline(
    month: tuple[StateChain, Publisher],
) -> None:
    """The core schemas (pystac's copies) and every extension schema with a local copy in
    ``stac_schemas/``; classification has none and is checked by the flag-table test."""
    _, publisher = month
    local = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        local[schema["$id"].rstrip("#")] = schema
    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(schema, default_specification=DRAFT7))
        for uri, schema in {**get_local_schema_cache(), **local}.items()
    )
    classification = ClassificationExtension.get_schema_uri()
    for path in (publisher.item_path(JULY[0]), publisher.collection_path):
        document = json.loads(path.read_text())
        validate_dict(document, extensions=[])
        extensions = set(document["stac_extensions"])
        assert extensions - set(local) == {classification}, path
        for uri in sorted(extensions & set(local)):
            Draft7Validator(local[uri], registry=registry).validate(document)
