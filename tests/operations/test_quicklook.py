"""The quick-look PNG of a day: a valid PNG of the announced size, sea and land without an
analysis in their own colours, land cells on the fixed colour scale, north up, deterministic;
written next to the COG when a day is published, as the STAC item's thumbnail."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import numpy as np
import pystac
import pytest
import xarray as xr
from PIL import Image
from pystac.validation import validate_dict
from state_helpers import provenance, small_result, small_uncertainty

from smda.geo.grid import GLOBAL_025, BBox, Grid
from smda.science.cycle import FLAG_ASSIMILATED, FLAG_LAND
from smda.storage.chain import StateChain
from smda.storage.publish import Publisher
from smda.storage.quicklook import (
    NO_DATA_COLOUR,
    SEA_COLOUR,
    QuicklookLayout,
    quicklook_layout,
    region_label,
    render_quicklook,
)

DAY = date(2024, 7, 20)
GRID = GLOBAL_025.subset(BBox(-105, 30, -95, 40))  # 40 × 40 cells, the demo's region
# ColorBrewer YlGnBu's end colours: the scale's bottom (0 m3 m-3) and top (0.5 and above)
DRY, WET = (255, 255, 217, 255), (8, 29, 88, 255)


def _hex(colour: str) -> tuple[int, int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16), 255)


def _state(grid: Grid, analysis: np.ndarray, land: np.ndarray) -> xr.Dataset:
    flags = np.where(land, FLAG_LAND | FLAG_ASSIMILATED, 0).astype(np.uint8)
    return xr.Dataset(
        {
            "analysis": (("lat", "lon"), analysis.astype(np.float32)),
            "flags": (("lat", "lon"), flags),
        },
        coords={"lat": grid.lats, "lon": grid.lons},
        attrs={"smda_day": DAY.isoformat()},
    )


def _pixel(image: Image.Image, layout: QuicklookLayout, row: int, col: int) -> tuple[int, ...]:
    """The colour at the centre of cell (row, col), row 0 the northernmost."""
    top = layout.height - layout.map_bottom - layout.map_height
    x = layout.map_left + col * layout.cell + layout.cell // 2
    y = top + row * layout.cell + layout.cell // 2
    return tuple(image.getpixel((x, y)))  # type: ignore[arg-type]


@pytest.fixture
def known() -> xr.Dataset:
    """Sea in the west half of row 0, a land cell without analysis, and known values."""
    analysis = np.full(GRID.shape, 0.25)
    land = np.ones(GRID.shape, dtype=bool)
    land[0, :20] = False
    analysis[0, :20] = np.nan
    analysis[5, 5] = np.nan  # land without an analysis
    analysis[10, 10] = 0.0
    analysis[10, 11] = 0.5
    analysis[10, 12] = 0.61  # above the scale: the top colour
    return _state(GRID, analysis, land)


def test_the_png_has_the_size_of_its_layout(known: xr.Dataset, tmp_path: Path) -> None:
    out = render_quicklook(known, tmp_path / "q.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    layout = quicklook_layout(GRID.shape)
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.size == (layout.width, layout.height)
    assert layout.cell == 18 and layout.map_width == layout.map_height == 720
    assert [p.name for p in tmp_path.iterdir()] == ["q.png"]  # atomic: no temporary left


def test_sea_no_data_and_land_take_their_colours(known: xr.Dataset, tmp_path: Path) -> None:
    out = render_quicklook(known, tmp_path / "q.png")
    layout = quicklook_layout(GRID.shape)
    with Image.open(out) as image:
        rgba = image.convert("RGBA")
        assert _pixel(rgba, layout, 0, 0) == _hex(SEA_COLOUR)
        assert _pixel(rgba, layout, 0, 19) == _hex(SEA_COLOUR)
        assert _pixel(rgba, layout, 0, 20) != _hex(SEA_COLOUR)
        assert _pixel(rgba, layout, 5, 5) == _hex(NO_DATA_COLOUR)
        assert _pixel(rgba, layout, 10, 10) == DRY
        assert _pixel(rgba, layout, 10, 11) == WET
        assert _pixel(rgba, layout, 10, 12) == WET
        mid = _pixel(rgba, layout, 20, 20)  # 0.25: the middle of YlGnBu, a green-blue
        assert mid[2] > mid[0] and mid not in (DRY, WET)


def test_the_scale_is_fixed_and_monotonic(tmp_path: Path) -> None:
    """The same value is the same colour whatever else the map holds; wetter is darker."""
    values = np.linspace(0.0, 0.5, 11)
    analysis = np.tile(np.repeat(values, 4)[:40], (40, 1))
    one = render_quicklook(_state(GRID, analysis, np.ones(GRID.shape, bool)), tmp_path / "a.png")
    other = np.where(np.arange(40)[None, :] < 20, analysis, 0.05)
    two = render_quicklook(_state(GRID, other, np.ones(GRID.shape, bool)), tmp_path / "b.png")
    layout = quicklook_layout(GRID.shape)
    with Image.open(one) as first, Image.open(two) as second:
        a, b = first.convert("RGBA"), second.convert("RGBA")
        row = [_pixel(a, layout, 20, 4 * i) for i in range(10)]
        assert [_pixel(b, layout, 20, 4 * i) for i in range(5)] == row[:5]
        lightness = [sum(c[:3]) for c in row]
        assert lightness == sorted(lightness, reverse=True) and len(set(row)) == 10


def test_the_map_is_north_up_whatever_the_latitude_order(known: xr.Dataset, tmp_path: Path) -> None:
    north_first = render_quicklook(known, tmp_path / "n.png")
    south_first = render_quicklook(known.isel(lat=slice(None, None, -1)), tmp_path / "s.png")
    assert north_first.read_bytes() == south_first.read_bytes()


def test_the_same_state_gives_the_same_bytes(known: xr.Dataset, tmp_path: Path) -> None:
    one = render_quicklook(known, tmp_path / "1.png").read_bytes()
    assert render_quicklook(known, tmp_path / "2.png").read_bytes() == one
    later = known.assign_attrs(smda_day="2024-07-21")
    assert render_quicklook(later, tmp_path / "3.png").read_bytes() != one  # the title


def test_a_global_day_renders_in_about_a_second(tmp_path: Path) -> None:
    grid = GLOBAL_025
    rng = np.random.default_rng(0)
    land = rng.random(grid.shape) < 0.3
    analysis = np.where(land, rng.uniform(0.02, 0.5, grid.shape), np.nan)
    state = _state(grid, analysis, land)
    started = time.perf_counter()
    out = render_quicklook(state, tmp_path / "globe.png")
    seconds = time.perf_counter() - started
    with Image.open(out) as image:
        assert image.size == (
            quicklook_layout(grid.shape).width,
            quicklook_layout(grid.shape).height,
        )
        assert quicklook_layout(grid.shape).cell == 1
    assert seconds < 3.0, f"a global quick-look took {seconds:.2f} s"


def test_region_label_names_the_edges() -> None:
    assert region_label(GRID.lats, GRID.lons) == "105°W–95°W, 30°N–40°N"
    across = GLOBAL_025.subset(BBox(170, -20, -170, 0))
    assert region_label(across.lats, across.lons) == "170°E–170°W, 20°S–0°"
    assert region_label(GLOBAL_025.lats, GLOBAL_025.lons) == "globe"


def test_a_state_without_flags_is_refused(known: xr.Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flags"):
        render_quicklook(known.drop_vars("flags"), tmp_path / "q.png")
    assert not (tmp_path / "q.png").exists()


# -- the quick-look as the STAC item's thumbnail ----------------------------------------------
def _published(tmp_path: Path, **options: str) -> tuple[Publisher, xr.Dataset]:
    chain = StateChain(tmp_path / "state")
    result = small_result(DAY)
    chain.write(result, uncertainty=small_uncertainty(result), provenance=provenance())
    publisher = Publisher(tmp_path / "pub", **options)  # type: ignore[arg-type]
    state = chain.read(DAY)
    publisher.publish(DAY, state, provenance())
    return publisher, state


def test_publishing_a_day_writes_its_quicklook_as_the_items_thumbnail(tmp_path: Path) -> None:
    publisher, state = _published(tmp_path)
    png = publisher.quicklook_path(DAY)
    assert png == publisher.cog_path(DAY).with_suffix(".png") and png.is_file()
    assert png.read_bytes() == render_quicklook(state, tmp_path / "same.png").read_bytes()
    item = pystac.Item.from_file(str(publisher.item_path(DAY)))
    thumb = item.assets["thumbnail"]
    assert thumb.roles == ["thumbnail", "overview"]
    assert thumb.media_type == pystac.MediaType.PNG == "image/png"
    assert Path(thumb.get_absolute_href() or "") == png
    assert item.assets["data"].roles == ["data"]  # the COG is still the data asset
    validate_dict(json.loads(publisher.item_path(DAY).read_text()), extensions=[])


def test_a_served_thumbnail_has_an_absolute_url(tmp_path: Path) -> None:
    publisher, _ = _published(tmp_path, base_url="https://data.example.org/smda")
    item = json.loads(publisher.item_path(DAY).read_text())
    assert item["assets"]["thumbnail"]["href"] == (
        "https://data.example.org/smda/cog/2024/smda_sm_20240720.png"
    )


def test_unpublishing_a_day_removes_its_quicklook(tmp_path: Path) -> None:
    publisher, _ = _published(tmp_path)
    assert publisher.unpublish([DAY]) == [DAY]
    assert not publisher.quicklook_path(DAY).exists()
