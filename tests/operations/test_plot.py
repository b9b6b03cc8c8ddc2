"""``smda plot``: the map of a day of the chain and the series of a point (analysis, its
uncertainty, SMAP as staged and as assimilated), and one-line errors for points and days that
have nothing to plot."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from matplotlib.lines import Line2D
from ops_runtime import LAST, RUN
from PIL import Image
from state_helpers import small_result, small_uncertainty

from smda.cli import run
from smda.ops import Runtime, backfill_days
from smda.ops.evaluate import report_directory, run_experiments, write_series
from smda.ops.plot import (
    OPEN_LOOP_NOTE,
    PointError,
    PointSeries,
    open_loop_label,
    plot_day,
    point_figure,
    point_series,
    render_point_series,
)
from smda.science.cycle import FLAG_ASSIMILATED
from smda.storage.inputs import load_series
from smda.storage.quicklook import SEA_COLOUR, colour_of, quicklook_layout
from smda_twin.world import World

Cli = Callable[[list[str]], tuple[int, str]]


@pytest.fixture
def smda_plot(
    rt: Runtime,
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """``smda plot ARGS --region=<the world's>`` through the console script's entry point, in
    ``tmp_path``, on the runtime's data: its exit code and what it printed."""
    for name in [k for k in os.environ if k.startswith("SMDA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SMDA_DATA_DIR", str(rt.settings.data_dir))
    monkeypatch.chdir(tmp_path)

    def call(args: list[str]) -> tuple[int, str]:
        argv = ["smda", "plot", f"--region={world.spec.region}", *args]  # a later --region wins
        monkeypatch.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            run()
        out = capsys.readouterr()
        code = exited.value.code
        return code if isinstance(code, int) else 1, out.out + out.err

    return call


def _write_days(rt: Runtime, days: list[date], *, sea: bool = False) -> None:
    """States of ``days`` written straight into the chain (all sea when ``sea``)."""
    for day in days:
        result = small_result(day, grid=rt.grid)
        if sea:
            result = dataclasses.replace(result, flags=result.flags * 0)
        rt.chain.write(result, uncertainty=small_uncertainty(result), provenance={"day": day})


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    return lines[0]


def test_the_map_of_a_day_shows_the_chains_analysis(rt: Runtime, tmp_path: Path) -> None:
    _write_days(rt, [RUN])
    out = plot_day(rt, RUN, tmp_path / "map.png")
    state = rt.chain.read(RUN)
    layout = quicklook_layout(rt.grid.shape)
    top = layout.height - layout.map_bottom - layout.map_height
    with Image.open(out) as image:
        assert image.size == (layout.width, layout.height)
        rgba = image.convert("RGBA")
        for row in range(rt.grid.nrows):
            for col in range(rt.grid.ncols):
                xy = (layout.map_left + col * layout.cell + 5, top + row * layout.cell + 5)
                value = float(state["analysis"].values[row, col])
                want = colour_of(value) if np.isfinite(value) else None
                got = rgba.getpixel(xy)
                if want is None:  # the sea cells of small_result
                    assert got == (217, 217, 217, 255) and SEA_COLOUR == "#d9d9d9"
                else:
                    assert got == tuple(int(v) for v in want)


def test_the_series_of_a_point_follows_the_chain_and_the_store(rt: Runtime, tmp_path: Path) -> None:
    backfill_days(rt, RUN, LAST)
    start = RUN - timedelta(days=2)  # two days before the chain starts
    lon, lat = float(rt.grid.lons[2]) + 0.05, float(rt.grid.lats[1]) - 0.05
    series = point_series(rt, lon, lat, start, LAST)

    n_days = (LAST - start).days + 1
    assert len(series) == n_days == len(series.analysis) == len(series.smap)
    assert series.missing == [start, start + timedelta(days=1)]
    assert int(np.isfinite(series.analysis).sum()) == (LAST - RUN).days + 1
    assert series.cell == (float(rt.grid.lons[2]), float(rt.grid.lats[1]))
    smap = load_series(rt.store, "smap", "soil_moisture", start, LAST).values[:, 1, 2]
    np.testing.assert_array_equal(series.smap, smap.astype(np.float64))
    assert np.isfinite(series.smap).any()
    for i, day in enumerate(series.days[2:], start=2):
        cell = rt.chain.read(day).isel(lat=1, lon=2)
        assert series.analysis[i] == float(cell["analysis"])
        assert series.uncertainty[i] == float(cell["uncertainty"]) > 0
        nudged = bool(int(cell["flags"]) & FLAG_ASSIMILATED)
        assert np.isfinite(series.smap_rescaled[i]) == nudged
        if nudged:
            assert series.smap_rescaled[i] == pytest.approx(
                float(cell["forecast"]) + float(cell["innovations"])
            )
    assert series.notes == [OPEN_LOOP_NOTE] and series.open_loop_from == []
    assert np.isnan(series.open_loop).all() and not _open_loop_line(series)
    out = render_point_series(series, tmp_path / "series.png")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1000, 480)


def test_a_point_over_sea_takes_the_nearest_land_cell(rt: Runtime) -> None:
    _write_days(rt, [RUN])  # small_result: sea in row 0, columns 0 and 1
    series = point_series(rt, float(rt.grid.lons[0]), float(rt.grid.lats[0]) + 0.1, RUN, RUN)
    assert series.cell == (float(rt.grid.lons[0]), float(rt.grid.lats[1]))


def test_a_point_over_the_sea_is_refused(rt: Runtime) -> None:
    _write_days(rt, [RUN], sea=True)
    with pytest.raises(PointError, match=r"over the sea: no land cell within 0.5° of it"):
        point_series(rt, float(rt.grid.lons[1]), float(rt.grid.lats[1]), RUN, RUN)


def test_a_point_outside_the_region_is_refused(rt: Runtime) -> None:
    _write_days(rt, [RUN])
    with pytest.raises(PointError, match=r"outside the region 100°W–99°W, 35°N–36°N"):
        point_series(rt, 10.0, 45.0, RUN, RUN)


def test_cli_plot_writes_the_map_and_the_series(
    smda_plot: Cli, rt: Runtime, tmp_path: Path
) -> None:
    _write_days(rt, [RUN, RUN + timedelta(days=1)])
    code, output = smda_plot([RUN.isoformat()])
    assert code == 0, output
    default = tmp_path / f"smda_sm_{RUN:%Y%m%d}.png"
    assert output.strip() == str(default) and default.exists()

    code, output = smda_plot(
        [
            "--point=-99.6,35.4",
            "--start",
            str(RUN),
            "--end",
            str(RUN + timedelta(days=3)),
            "-o",
            "p.png",
        ]
    )
    assert code == 0, output
    assert str(tmp_path / "p.png") in output.splitlines()  # the path on stdout, the note on stderr
    assert (tmp_path / "p.png").exists()
    assert OPEN_LOOP_NOTE in output


def test_cli_plot_takes_a_region_key(smda_plot: Cli, rt: Runtime, tmp_path: Path) -> None:
    _write_days(rt, [RUN])
    code, output = smda_plot([RUN.isoformat(), f"--region={rt.region}"])  # the last --region wins
    assert code == 0, output
    assert (tmp_path / f"smda_sm_{RUN:%Y%m%d}.png").exists()

    code, output = smda_plot([RUN.isoformat(), "--region=r0.25_0_0_1x1"])
    assert code == 2 and "known regions" in output, output


@pytest.mark.parametrize(
    ("args", "code", "problem"),
    [
        (["2015-05-01"], 1, "no state for 2015-05-01"),
        (
            ["--point=-99.6,35.4", "--start", "2015-05-01", "--end", "2015-05-03"],
            1,
            "has no day in",
        ),
        (
            ["--point=10,45", "--start", "2015-06-11", "--end", "2015-06-12"],
            1,
            "outside the region",
        ),
        (["--point=-99.6", "--start", "2015-06-11", "--end", "2015-06-12"], 2, "is not LON,LAT"),
        (["--point=-99.6,35.4"], 2, "--point needs --start and --end"),
        (["2015-06-11", "--point=-99.6,35.4"], 2, "either DAY"),
        ([], 2, "either DAY"),
    ],
)
def test_cli_plot_errors_are_one_line(
    smda_plot: Cli, rt: Runtime, tmp_path: Path, args: list[str], code: int, problem: str
) -> None:
    _write_days(rt, [RUN])
    got, output = smda_plot(args)
    assert problem in _one_line_error(output)
    assert got == code
    assert not list(tmp_path.glob("*.png"))


def _cell_open_loop(series: xr.Dataset, day: date) -> float:
    return float(series["open_loop"].sel(time=np.datetime64(day, "ns")).values[1, 2])


def _open_loop_line(series: PointSeries) -> list[Line2D]:
    return [
        line
        for line in point_figure(series).axes[0].get_lines()
        if str(line.get_label()).startswith("open loop")
    ]


def test_the_open_loop_is_drawn_from_the_stored_evaluations(
    rt: Runtime, smda_plot: Cli, tmp_path: Path
) -> None:
    """Two stored evaluations overlap the period: each day comes from the newest file covering
    it; a day no evaluation covers has none."""
    backfill_days(rt, RUN, LAST)
    bundle, folder = rt.registry.current(), report_directory(rt.settings.data_dir, rt.grid)
    mid = RUN + timedelta(days=3)
    old = run_experiments(rt.store, bundle, RUN, mid, gain=0.3, spinup_days=3)
    new = run_experiments(rt.store, bundle, RUN + timedelta(days=2), LAST, gain=0.3, spinup_days=0)
    os.utime(write_series(old, folder), (1e9, 1e9))  # older than the one written next
    write_series(new, folder)
    overlap = RUN + timedelta(days=2)
    assert _cell_open_loop(old, overlap) != _cell_open_loop(new, overlap)  # who wins shows

    start = RUN - timedelta(days=1)
    lon, lat = float(rt.grid.lons[2]), float(rt.grid.lats[1])
    series = point_series(rt, lon, lat, start, LAST)

    assert np.isnan(series.open_loop[0])  # no evaluation covers the day before RUN
    for i, day in enumerate(series.days[1:], start=1):
        source = old if day < overlap else new
        assert series.open_loop[i] == _cell_open_loop(source, day), day
    assert series.open_loop_from == [(RUN, mid), (overlap, LAST)]
    assert OPEN_LOOP_NOTE not in series.notes
    label = "open loop (from smda evaluate 2015-06-11…2015-06-14, 2015-06-13…2015-06-16)"
    assert open_loop_label(series) == label
    (line,) = _open_loop_line(series)
    assert line.get_label() == label.replace("evaluate ", "evaluate\n").replace(", ", ",\n")
    assert line.get_linestyle() == "--"
    np.testing.assert_array_equal(np.asarray(line.get_ydata(), dtype=float), series.open_loop)

    # a shorter period names only the evaluations that gave it days
    assert point_series(rt, lon, lat, LAST, LAST).open_loop_from == [(overlap, LAST)]
    assert point_series(rt, lon, lat, RUN, RUN).open_loop_from == [(RUN, mid)]

    period = ["--start", str(RUN), "--end", str(LAST), "-o", "p.png"]
    code, output = smda_plot([f"--point={lon},{lat}", *period])
    assert code == 0, output
    assert f"drawn: {label}" in output and OPEN_LOOP_NOTE not in output


def test_an_unreadable_evaluation_is_skipped_with_a_note(rt: Runtime) -> None:
    backfill_days(rt, RUN, LAST)
    folder = report_directory(rt.settings.data_dir, rt.grid)
    folder.mkdir(parents=True)
    (folder / f"evaluation_{RUN}_{LAST}.nc").write_bytes(b"not a netCDF file")
    series = point_series(rt, float(rt.grid.lons[2]), float(rt.grid.lats[1]), RUN, LAST)
    assert np.isnan(series.open_loop).all() and series.open_loop_from == []
    assert series.notes[-1] == OPEN_LOOP_NOTE
    assert series.notes[0].startswith(f"evaluation_{RUN}_{LAST}.nc skipped (unreadable")
