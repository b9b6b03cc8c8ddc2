"""Region keys and ``region.json``: a key names exactly one grid window and gives it back; the
file is written once, atomically, locally or on any fsspec URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smda.geo.grid import GLOBAL_025, BBox, Grid, region_grid
from smda.storage.atomic import atomic_create_bytes
from smda.storage.regions import (
    REGION_FILE,
    RegionInfo,
    ensure_region_file,
    find_regions,
    grid_of_key,
    key_bbox,
    read_region_file,
    region_key,
)
from smda.storage.store import Store


@st.composite
def windows(draw: st.DrawFn) -> Grid:
    """Any window of the 0.25° grid: across the antimeridian, every longitude, one cell."""
    nrows = draw(st.integers(1, 720))
    row0 = draw(st.integers(0, 720 - nrows))
    ncols = draw(st.integers(1, 1440))
    col0 = draw(st.integers(0, 1439))
    return Grid(0.25, row0, col0, nrows, ncols)


@given(windows())
def test_a_key_gives_back_its_grid_and_a_box_that_selects_it_exactly(grid: Grid) -> None:
    key = region_key(grid)
    named = grid_of_key(key)
    assert named == grid or (grid.is_global and named == GLOBAL_025)  # one key per window
    assert region_grid(key_bbox(named)) == named


def test_the_demo_region_key_and_box() -> None:
    grid = region_grid(BBox.parse("-105,30,-95,40"))
    assert region_key(grid) == "r0.25_200_300_40x40"
    assert key_bbox(grid_of_key("r0.25_200_300_40x40")) == BBox(-105, 30, -95, 40)
    assert grid_of_key("global") == GLOBAL_025


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("somewhere", "is not a region key"),
        ("r0.25_200_300_40", "is not a region key"),
        ("r0.25_700_300_40x40", "names no grid window"),
        ("r0.250_200_300_40x40", "r0.25_200_300_40x40"),
    ],
)
def test_a_bad_key_is_one_line(key: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as info:
        grid_of_key(key)
    assert "\n" not in str(info.value)


def test_region_json_is_written_once_and_read_back(tmp_path: Path) -> None:
    grid = region_grid(BBox.parse("170,-20,-170,0"))  # across the antimeridian
    folder = tmp_path / "state" / region_key(grid)

    assert ensure_region_file(folder, grid)
    first = (folder / REGION_FILE).read_bytes()
    assert not ensure_region_file(folder, grid)

    assert (folder / REGION_FILE).read_bytes() == first
    doc = json.loads(first)
    assert doc["key"] == region_key(grid) and doc["grid_shape"] == {"lat": 80, "lon": 80}
    assert doc["bbox"] == {"west": 170.0, "south": -20.0, "east": -170.0, "north": 0.0}
    info = read_region_file(folder)
    assert info is not None and info.grid == grid and info.from_file
    assert "created" not in doc  # no time: the same bytes in every data directory
    assert [p.name for p in folder.iterdir()] == [REGION_FILE]  # no temporary file left


def test_a_region_json_that_disagrees_with_its_key_is_not_trusted(tmp_path: Path) -> None:
    grid = region_grid(BBox.parse("-105,30,-95,40"))
    doc = RegionInfo.of_grid(grid).to_json()
    doc["bbox"]["west"] = -106.0
    (tmp_path / REGION_FILE).write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="disagree"):
        RegionInfo.from_json(doc)
    assert read_region_file(tmp_path) is None


def test_region_json_on_an_object_store() -> None:
    grid = region_grid(BBox.parse("-100,35,-99,36"))
    url = f"memory://smda-state/{region_key(grid)}"
    assert ensure_region_file(url, grid) and not ensure_region_file(url, grid)
    info = read_region_file(url)
    assert info is not None and info.grid == grid
    assert list(find_regions(["memory://smda-state"])) == [region_key(grid)]


def test_find_regions_lists_key_folders_with_or_without_region_json(tmp_path: Path) -> None:
    a = region_grid(BBox.parse("-105,30,-95,40"))
    b = region_grid(BBox.parse("0,0,1,1"))
    ensure_region_file(tmp_path / "models" / region_key(a), a)
    (tmp_path / "state" / region_key(b)).mkdir(parents=True)  # from before region.json
    (tmp_path / "state" / "notes").mkdir()

    found = find_regions([tmp_path / "state", tmp_path / "models", tmp_path / "missing"])

    assert sorted(found) == sorted([region_key(a), region_key(b)])
    assert found[region_key(a)].from_file and not found[region_key(b)].from_file
    assert found[region_key(b)].grid == b


def test_the_store_writer_marks_the_staged_folder(tmp_path: Path) -> None:
    grid = region_grid(BBox.parse("-100,35,-99,36"))
    store = Store(tmp_path, grid)
    with store.writer():
        pass
    info = read_region_file(tmp_path / "staged" / store.region)
    assert info is not None and info.grid == grid


def test_atomic_create_keeps_the_first_writer(tmp_path: Path) -> None:
    target = tmp_path / "a" / "f.json"
    assert atomic_create_bytes(target, b"one")
    assert not atomic_create_bytes(target, b"two")
    assert target.read_bytes() == b"one" and sorted(p.name for p in target.parent.iterdir()) == [
        "f.json"
    ]
