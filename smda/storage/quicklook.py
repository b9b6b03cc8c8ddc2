"""Quick-looks: a day's analysis as a PNG map with a fixed colour scale, and figures as PNG.

:func:`render_quicklook` draws the ``analysis`` of a state (a
:meth:`smda.storage.chain.StateChain.read` dataset, (lat, lon)) on a fixed scale of
:data:`VMIN` … :data:`VMAX` m3 m-3 with the :data:`CMAP` colormap (ColorBrewer ``YlGnBu``: a
sequential scale whose lightness falls monotonically, dry = light yellow, wet = dark blue;
values above :data:`VMAX` take the top colour), a colour bar with the unit, and the day, the
region and how much of the land was nudged toward SMAP in the title. Sea (cells without
:data:`~smda.science.cycle.FLAG_LAND`) is :data:`SEA_COLOUR`; a land cell without an analysis is
:data:`NO_DATA_COLOUR`. The same value is always the same colour, on every day and region,
so maps can be compared by eye.

The map is drawn cell by cell, without resampling: each 0.25° cell is a square of
:func:`cell_pixels` pixels (1 for the globe, 18 for a 10° × 10° region), placed at exact pixel
offsets (:func:`quicklook_layout` gives the PNG's size). Rendering uses matplotlib's Agg
canvas through :class:`matplotlib.figure.Figure` (no pyplot, no global state: safe in threads),
and the PNG carries no software version or timestamp, so the same state gives the same bytes.
:func:`save_png` writes any figure atomically (temporary sibling, then rename).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
import xarray as xr
from matplotlib.colors import Colormap, Normalize, to_rgba_array
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from smda.science.cycle import FLAG_ASSIMILATED, FLAG_FORECAST_ONLY, FLAG_LAND
from smda.storage.atomic import atomic_write_bytes

__all__ = [
    "CMAP",
    "NO_DATA_COLOUR",
    "SEA_COLOUR",
    "VMAX",
    "VMIN",
    "QuicklookLayout",
    "cell_pixels",
    "colour_of",
    "quicklook_layout",
    "region_label",
    "render_quicklook",
    "save_png",
]

log = logging.getLogger(__name__)

VMIN, VMAX = 0.0, 0.5
"""The fixed colour scale of soil moisture (m3 m-3)."""
CMAP: Colormap = mpl.colormaps["YlGnBu"].with_extremes(over=mpl.colormaps["YlGnBu"](1.0))
"""Colormap of soil moisture (values above :data:`VMAX` take its top colour)."""
SEA_COLOUR = "#d9d9d9"
"""Colour of sea cells (light grey)."""
NO_DATA_COLOUR = "#7f7f7f"
"""Colour of land cells without an analysis (dark grey)."""
DPI = 100
PNG_LEVEL = 3
"""zlib compression level of the PNGs."""
_MAP_PIXELS = (1440, 720)  # the largest map panel (width, height) in pixels: the globe at 1 px/cell
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 150, 64, 44  # margins (pixels): ticks, colour bar, title
_MIN_HEIGHT = 320  # figure height at least (pixels), so that the colour bar stays readable


@dataclass(frozen=True)
class QuicklookLayout:
    """Where the map sits in the PNG (pixels): each cell is ``cell`` × ``cell`` pixels."""

    cell: int
    width: int
    height: int
    map_left: int
    map_bottom: int
    map_width: int
    map_height: int


def cell_pixels(shape: tuple[int, int]) -> int:
    """Pixels per cell side for a (lat, lon) grid ``shape``: the largest integer that keeps the
    map within 1440 × 720 pixels (at least 1)."""
    nlat, nlon = shape
    return max(1, min(_MAP_PIXELS[0] // nlon, _MAP_PIXELS[1] // nlat))


def quicklook_layout(shape: tuple[int, int]) -> QuicklookLayout:
    """The layout of the quick-look of a (lat, lon) grid ``shape``; the PNG is
    ``width`` × ``height`` pixels."""
    k = cell_pixels(shape)
    map_w, map_h = shape[1] * k, shape[0] * k
    height = max(map_h + _TOP + _BOTTOM, _MIN_HEIGHT)
    return QuicklookLayout(
        cell=k,
        width=map_w + _LEFT + _RIGHT,
        height=height,
        map_left=_LEFT,
        map_bottom=height - _TOP - map_h,
        map_width=map_w,
        map_height=map_h,
    )


def colour_of(values: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """RGBA (uint8, last axis) of soil-moisture values (m3 m-3) on the fixed scale."""
    norm = Normalize(VMIN, VMAX, clip=False)
    rgba: npt.NDArray[np.uint8] = CMAP(norm(np.asarray(values, dtype=np.float64)), bytes=True)
    return rgba


def _rgba(state: xr.Dataset) -> npt.NDArray[np.uint8]:
    """The map's pixels, one per cell, north up."""
    analysis = np.asarray(state["analysis"].values, dtype=np.float64)
    land = (np.asarray(state["flags"].values) & FLAG_LAND) > 0
    rgba = colour_of(np.where(np.isfinite(analysis), analysis, VMIN))
    rgba[~land] = (to_rgba_array(SEA_COLOUR)[0] * 255).round().astype(np.uint8)
    rgba[land & ~np.isfinite(analysis)] = (
        (to_rgba_array(NO_DATA_COLOUR)[0] * 255).round().astype(np.uint8)
    )
    return rgba


def _north_up(state: xr.Dataset) -> xr.Dataset:
    lat = state["lat"].values
    return state.isel(lat=slice(None, None, -1)) if lat.size > 1 and lat[0] < lat[-1] else state


def _continuous(lons: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Longitudes made increasing across the antimeridian (a window may cross it)."""
    return np.asarray(np.unwrap(lons, period=360.0), dtype=np.float64)


def _res(coord: npt.NDArray[np.float64]) -> float:
    return float(abs(coord[1] - coord[0])) if coord.size > 1 else 0.25


def region_label(lat: npt.ArrayLike, lon: npt.ArrayLike) -> str:
    """The outer edges of cell-centre coordinates, e.g. ``105°W–95°W, 30°N–40°N`` (or
    ``globe``)."""
    lats = np.asarray(lat, dtype=np.float64)
    lons = _continuous(np.asarray(lon, dtype=np.float64))
    half_lat, half_lon = _res(lats) / 2, _res(lons) / 2
    south, north = lats.min() - half_lat, lats.max() + half_lat
    west, east = lons.min() - half_lon, lons.max() + half_lon
    if east - west >= 360 - 1e-6 and north - south >= 180 - 1e-6:
        return "globe"
    return f"{_lon_tick(west)}–{_lon_tick(east)}, {_lat_tick(south)}–{_lat_tick(north)}"


def _subtitle(state: xr.Dataset) -> str:
    flags = np.asarray(state["flags"].values)
    land = int(((flags & FLAG_LAND) > 0).sum())
    if not land:
        return "no land cell"
    if ((flags & FLAG_FORECAST_ONLY) > 0).any() or state.attrs.get("smda_forecast_only"):
        return "forecast-only day: no SMAP retrieval was assimilated"
    nudged = int(((flags & FLAG_ASSIMILATED) > 0).sum())
    return f"nudged toward SMAP L3 in {100 * nudged / land:.0f} % of the land cells"


def save_png(fig: Figure, out: Path | str) -> Path:
    """Write ``fig`` as a PNG at ``out`` atomically (no software/timestamp metadata)."""
    buffer = io.BytesIO()
    # zlib level 3: the global quick-look is as small as at the default 6 (1.19 against
    # 1.22 MB) and encodes in 70 % of the time
    fig.savefig(
        buffer,
        format="png",
        dpi=DPI,
        metadata={"Software": None},
        pil_kwargs={"compress_level": PNG_LEVEL},
    )
    target = Path(out)
    atomic_write_bytes(target, buffer.getvalue())
    return target


def render_quicklook(
    state: xr.Dataset, out: Path | str, *, day: date | None = None, region: str | None = None
) -> Path:
    """Write the quick-look PNG of a day's state (module docstring) at ``out``; return it.

    Parameters
    ----------
    state:
        ``analysis`` (m3 m-3) and ``flags`` on (lat, lon), e.g.
        :meth:`smda.storage.chain.StateChain.read`.
    day:
        The day in the title (default: the state's ``smda_day`` attribute).
    region:
        The region in the title (default: its edges from the coordinates, :func:`region_label`).

    Raises
    ------
    ValueError
        If ``analysis`` or ``flags`` is missing or not (lat, lon).
    """
    missing = [v for v in ("analysis", "flags") if v not in state.data_vars]
    if missing:
        raise ValueError(f"the state has no {missing}: a quick-look needs analysis and flags")
    state = _north_up(state[["analysis", "flags"]].transpose("lat", "lon"))
    if day is None and "smda_day" not in state.attrs:
        raise ValueError("the state has no smda_day attribute: give the day")
    label = day.isoformat() if day is not None else str(state.attrs["smda_day"])
    layout = quicklook_layout((state.sizes["lat"], state.sizes["lon"]))
    fig = Figure(figsize=(layout.width / DPI, layout.height / DPI), dpi=DPI, facecolor="white")
    pixels = np.repeat(np.repeat(_rgba(state), layout.cell, axis=0), layout.cell, axis=1)
    fig.figimage(pixels, xo=layout.map_left, yo=layout.map_bottom, origin="upper", zorder=0)
    _frame(fig, state, layout)
    where = region or region_label(state["lat"].values, state["lon"].values)
    fig.text(
        layout.map_left / layout.width,
        1 - 10 / layout.height,
        f"smda surface soil moisture (0–5 cm) · {label} · {where}",
        ha="left",
        va="top",
        fontsize=12,
        weight="bold",
    )
    fig.text(
        layout.map_left / layout.width,
        1 - 34 / layout.height,
        f"analysis SM_a, {_subtitle(state)}",
        ha="left",
        va="top",
        fontsize=9,
    )
    _legend(fig, layout)
    path = save_png(fig, out)
    log.info("quick-look of %s written to %s", label, path)
    return path


def _axes_rect(
    layout: QuicklookLayout, left: float, bottom: float, width: float, height: float
) -> tuple[float, float, float, float]:
    return (
        left / layout.width,
        bottom / layout.height,
        width / layout.width,
        height / layout.height,
    )


def _frame(fig: Figure, state: xr.Dataset, layout: QuicklookLayout) -> None:
    """Axes over the map, for the frame and the lon/lat ticks (transparent)."""
    lats = state["lat"].values.astype(np.float64)
    lons = _continuous(state["lon"].values.astype(np.float64))
    half_lat, half_lon = _res(lats) / 2, _res(lons) / 2
    rect = _axes_rect(
        layout, layout.map_left, layout.map_bottom, layout.map_width, layout.map_height
    )
    ax = fig.add_axes(rect, zorder=1)
    ax.patch.set_alpha(0.0)
    ax.set_xlim(lons.min() - half_lon, lons.max() + half_lon)
    ax.set_ylim(lats.min() - half_lat, lats.max() + half_lat)
    ax.xaxis.set_major_formatter(lambda x, _: _lon_tick(x))
    ax.yaxis.set_major_formatter(lambda y, _: _lat_tick(y))
    ax.tick_params(labelsize=8)


def _lon_tick(x: float) -> str:
    """``105°W``, ``0°``, ``180°``, ``170°E`` (continuous longitudes wrapped)."""
    x = round((x + 180) % 360 - 180, 6)
    if x in (0, -180):
        return "0°" if x == 0 else "180°"
    return f"{abs(x):g}°{'W' if x < 0 else 'E'}"


def _lat_tick(y: float) -> str:
    """``30°N``, ``0°``, ``20°S``."""
    y = round(y, 6)
    return f"{abs(y):g}°{'S' if y < 0 else 'N' if y > 0 else ''}"


def _legend(fig: Figure, layout: QuicklookLayout) -> None:
    """The colour bar (m3 m-3) and the sea / no-analysis swatches, right of the map."""
    height = max(layout.map_height, _MIN_HEIGHT - _TOP - _BOTTOM)
    bar_h = 0.7 * height
    bottom = layout.height - _TOP - bar_h
    cax = fig.add_axes(
        _axes_rect(layout, layout.map_left + layout.map_width + 16, bottom, 16, bar_h)
    )
    mappable: Any = mpl.cm.ScalarMappable(norm=Normalize(VMIN, VMAX), cmap=CMAP)
    bar = fig.colorbar(mappable, cax=cax, extend="max")
    bar.set_label("soil moisture (m³ m⁻³)", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    fig.legend(
        handles=[
            Patch(facecolor=SEA_COLOUR, edgecolor="black", linewidth=0.5, label="sea"),
            Patch(facecolor=NO_DATA_COLOUR, edgecolor="black", linewidth=0.5, label="no analysis"),
        ],
        loc="lower left",
        bbox_to_anchor=((layout.map_left + layout.map_width + 8) / layout.width, 0.01),
        fontsize=8,
        frameon=False,
        handlelength=1.2,
    )
