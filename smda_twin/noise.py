"""Reproducible random fields for the synthetic world, with random access by key.

Every random number of the world is a pure function of ``(seed, quantity tag, day, index…)``:
standard normals are made by hashing those integers (SplitMix64 finaliser) and mapping the
hash through the normal quantile function. Asking for day D therefore never depends on which
days (or which part of the globe) were asked before, and any window of a global field can be
produced without generating the rest.

Spatially correlated fields come from a :class:`Lattice`: unit normals at the nodes of a
regular global lattice (``spacing`` degrees, periodic in longitude) are combined at query
points with a smooth compact kernel ``(1 − (d/2)²)³`` (d in node spacings), normalised so that
the field has unit variance everywhere. The weights are separable, so a field on an outer
product of latitudes and longitudes costs two sparse products.

Temporal correlation is built from daily white lattices:
:func:`moving_sum` (a short weighted sum of the last few days, no state) and
:class:`BlockChain` (deterministic sequential processes such as AR(1) series, integrated in
fixed blocks from an origin and memoised).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri

__all__ = [
    "Band",
    "BlockChain",
    "Lattice",
    "Memo",
    "hash_normals",
    "hash_uniforms",
    "interpolate",
    "key",
    "moving_sum",
    "unwrap_lon",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_M64 = (1 << 64) - 1
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xD1B54A32D192ED03)
_KERNEL_RADIUS = 2.0  # in node spacings
_WIDE = 256


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def key(*parts: int | str) -> int:
    """A 64-bit key from integers and strings (strings hashed stably, not with ``hash``)."""
    h = 0x243F6A8885A308D3
    for part in parts:
        value = int.from_bytes(part.encode(), "little") if isinstance(part, str) else int(part)
        while True:
            h = _splitmix(h ^ (value & _M64))
            value >>= 64
            if value <= 0:
                break
    return h


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64 finaliser, vectorised (uint64 arithmetic wraps)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hash(k: int, indices: tuple[npt.ArrayLike, ...]) -> npt.NDArray[np.uint64]:
    """Hash of ``k`` and broadcast integer index arrays, mixing one axis at a time."""
    h = np.asarray(np.uint64(k))
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        for idx in indices:
            a = np.asarray(np.asarray(idx).astype(np.int64).view(np.uint64) * _K2)
            h = _mix(np.asarray((h ^ a) + _K1))
    return h


def hash_uniforms(k: int, *indices: npt.ArrayLike) -> FloatArray:
    """Uniform deviates in (0, 1) keyed by ``k`` and the (broadcast) integer ``indices``."""
    h = _hash(k, indices)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def hash_normals(k: int, *indices: npt.ArrayLike) -> FloatArray:
    """Standard normal deviates keyed by ``k`` and the (broadcast) integer ``indices``."""
    return np.asarray(ndtri(hash_uniforms(k, *indices)), dtype=np.float64)


def unwrap_lon(lon: npt.ArrayLike) -> FloatArray:
    """Longitudes made continuous from the first one (e.g. 170…179.9, −179.9… → 170…190)."""
    lo = np.asarray(lon, dtype=np.float64)
    if lo.size == 0:
        return lo
    first = (float(lo.flat[0]) + 180.0) % 360.0 - 180.0
    return first + (lo - first) % 360.0


@dataclass(frozen=True)
class Band:
    """Separable interpolation weights along one axis: ``out[i] = Σ_t taps[i, t] · x[start[i] + t]``.

    ``nodes[j]`` is the lattice node number of input row ``j``.
    """

    start: npt.NDArray[np.intp]
    taps: npt.NDArray[np.float32]
    nodes: IntArray

    @property
    def size(self) -> int:
        return int(self.start.size)

    def apply(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Weights applied to the rows of ``x`` (len(nodes), m) → (len(start), m), float32.

        Wide inputs (m ≥ 256) go row by row through BLAS (fast), narrow ones through a
        4-pass elementwise gather; either way each output element is a fixed-order sum of
        its own taps, and the path depends on ``m`` only.
        """
        if x.shape[1] >= _WIDE:
            out = np.empty((self.start.size, x.shape[1]), dtype=np.float32)
            for i in range(self.start.size):
                s = self.start[i]
                np.dot(self.taps[i], x[s : s + 4], out=out[i])
            return out
        return self.gather(x)

    def gather(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Elementwise (position-independent) version of :meth:`apply`."""
        acc = self.taps[:, 0, None] * x[self.start]
        for t in range(1, 4):
            acc += self.taps[:, t, None] * x[self.start + t]
        return np.asarray(acc, dtype=np.float32)


def _kernel_band(x: FloatArray) -> Band:
    """Normalised kernel weights of query positions ``x`` (node units) on integer nodes."""
    if x.size == 0:
        return Band(np.zeros(0, np.intp), np.zeros((0, 4), np.float32), np.zeros(0, np.int64))
    base = np.floor(x).astype(np.int64)
    offsets = np.arange(-1, 3, dtype=np.int64)  # the nodes within distance < 2 of x
    nodes = base[:, None] + offsets[None, :]
    d = (x[:, None] - nodes) / _KERNEL_RADIUS
    w = np.clip(1.0 - d * d, 0.0, None) ** 3
    w /= np.sqrt(np.sum(w * w, axis=1, keepdims=True))
    first = int(nodes.min())
    n_nodes = int(nodes.max()) - first + 1
    return Band(
        start=(base - 1 - first).astype(np.intp),
        taps=w.astype(np.float32),
        nodes=np.arange(first, first + n_nodes, dtype=np.int64),
    )


@dataclass(frozen=True)
class Lattice:
    """A global lattice of unit normals, smoothly interpolated to points.

    Parameters
    ----------
    tag:
        Name of the quantity (part of every random key).
    spacing:
        Node spacing in degrees; must divide 360. Features have a scale of about
        ``spacing`` (the correlation falls to ~0.5 at one spacing).
    """

    tag: str
    spacing: float

    @property
    def n_lon(self) -> int:
        return round(360.0 / self.spacing)

    def weights(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> tuple[Band, Band]:
        """Interpolation bands (latitude, longitude) for an outer product of points.

        The longitude band's ``nodes`` are wrapped into 0 … n_lon − 1 (a node may appear
        twice, as itself and one turn later, for a global set of longitudes).
        """
        x_lat = (np.asarray(lat, dtype=np.float64) + 90.0) / self.spacing
        x_lon = (unwrap_lon(lon) + 180.0) / self.spacing
        b_lat = _kernel_band(x_lat)
        b_lon = _kernel_band(x_lon)
        return b_lat, Band(b_lon.start, b_lon.taps, b_lon.nodes % self.n_lon)

    def nodes(self, seed: int, days: npt.ArrayLike | None, bands: tuple[Band, Band]) -> FloatArray:
        """Unit normals at the nodes of ``bands``: (len(days), n_node_lat, n_node_lon), or
        without the first axis for a static field (``days=None``)."""
        n_lat, n_lon = bands[0].nodes, bands[1].nodes
        k = key(seed, self.tag, round(self.spacing * 1e6))
        if days is None:
            return hash_normals(k, n_lat[:, None], n_lon[None, :])
        d = np.asarray(days, dtype=np.int64)
        return hash_normals(k, d[:, None, None], n_lat[None, :, None], n_lon[None, None, :])

    def sample(
        self, seed: int, days: npt.ArrayLike | None, lat: npt.ArrayLike, lon: npt.ArrayLike
    ) -> npt.NDArray[np.float32]:
        """The field at outer-product points: (len(days), lat, lon) or (lat, lon), float32."""
        bands = self.weights(lat, lon)
        return interpolate(self.nodes(seed, days, bands), bands)


def interpolate(
    values: npt.NDArray[np.floating], bands: tuple[Band, Band]
) -> npt.NDArray[np.float32]:
    """Apply separable interpolation to node values (..., n_node_lat, n_node_lon).

    Longitudes first (on the small node array), then latitudes, one layer at a time, in
    float32. Every output element is a fixed-order sum over its own nodes, so a layer's
    result does not depend on how many layers are computed together (bitwise).

    Returns float32 (..., len(lat), len(lon)).
    """
    b_lat, b_lon = bands
    v = np.asarray(values, dtype=np.float32)
    lead = v.shape[:-2]
    kl, kn = v.shape[-2:]
    n, m = b_lat.size, b_lon.size
    stack = v.reshape(-1, kl, kn)
    nd = stack.shape[0]
    if kl < _WIDE and m < _WIDE:
        # Narrow layers: all layers at once through the elementwise path.
        x = np.ascontiguousarray(stack.transpose(2, 0, 1)).reshape(kn, nd * kl)
        by_lon = b_lon.gather(x).reshape(m, nd, kl).transpose(2, 1, 0)  # (kl, nd, m)
        res = b_lat.gather(np.ascontiguousarray(by_lon).reshape(kl, nd * m))
        out = np.ascontiguousarray(res.reshape(n, nd, m).transpose(1, 0, 2))
        return out.reshape((*lead, n, m))
    out = np.empty((nd, n, m), dtype=np.float32)
    for i, layer in enumerate(stack):
        by_lon = np.ascontiguousarray(b_lon.apply(np.ascontiguousarray(layer.T)).T)  # (kl, m)
        out[i] = b_lat.apply(by_lon)
    return out.reshape((*lead, n, m))


def moving_sum(daily: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted sums over the last ``len(weights)`` days of daily white fields.

    ``daily`` has shape (n + len(weights) − 1, ...) for n output days (oldest first);
    ``weights[j]`` multiplies the field of ``j`` days ago. Weights are normalised to unit
    sum of squares, so unit-variance white input gives unit-variance output with lag-k
    correlation ``Σ w_j w_{j+k}``.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / np.sqrt(np.sum(w * w))
    m = w.size
    n = daily.shape[0] - m + 1
    out = w[0] * daily[m - 1 : m - 1 + n]
    for j in range(1, m):
        out = out + w[j] * daily[m - 1 - j : m - 1 - j + n]
    return np.asarray(out)


class Memo[T]:
    """A small thread-safe least-recently-used cache owned by one object."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, k: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if k in self._data:
                self._data.move_to_end(k)
                return self._data[k]
        value = make()
        with self._lock:
            self._data[k] = value
            while len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


class BlockChain[S]:
    """A deterministic sequential daily process, integrated in fixed blocks and memoised.

    Day numbers are integers (e.g. ``date.toordinal()``). Block ``k`` covers days
    ``origin + k·block … origin + (k+1)·block − 1`` and is computed by ``step(first_day,
    n_days, state) → (values (n_days, ...), end_state)`` from the end state of block ``k − 1``
    (``init()`` for block 0). Because blocks are fixed, every day's value is a function of
    the chain's definition only, not of the order of requests. Blocks before ``keep_from``
    are not stored (only their end state).
    """

    def __init__(
        self,
        origin: int,
        block: int,
        init: Callable[[], S],
        step: Callable[[int, int, S], tuple[npt.NDArray[Any], S]],
        *,
        keep_from: int | None = None,
    ) -> None:
        self.origin = origin
        self.block = block
        self._init = init
        self._step = step
        self._keep_from = origin if keep_from is None else keep_from
        self._values: dict[int, npt.NDArray[Any]] = {}
        self._states: dict[int, S] = {}
        self._lock = threading.RLock()

    def _ensure(self, k: int) -> None:
        if k in self._values:
            return
        done = [j for j in self._states if j < k]
        j = max(done) + 1 if done else 0
        state = self._states[j - 1] if j > 0 else self._init()
        while j <= k:
            first = self.origin + j * self.block
            values, state = self._step(first, self.block, state)
            self._states[j] = state
            if first + self.block > self._keep_from:
                self._values[j] = values
            j += 1

    def forget_before(self, day: int) -> None:
        """Drop the values and end states of the blocks that end before ``day``, except the
        last such end state (the next block starts from it): a long walk forward (a year of a
        global world) then holds a few blocks, not every one. Nothing changes in the values:
        asking for a forgotten day again integrates from the start once more."""
        with self._lock:
            k = (day - self.origin) // self.block  # the block holding ``day``
            for j in [j for j in self._values if j < k]:
                del self._values[j]
            for j in [j for j in self._states if j < k - 1]:
                del self._states[j]

    def get(self, first: int, last: int) -> npt.NDArray[Any]:
        """Values of days ``first … last`` (inclusive), shape (n_days, ...)."""
        if first < self.origin or last < first:
            raise ValueError(f"days {first}…{last} outside the chain starting at day {self.origin}")
        k0 = (first - self.origin) // self.block
        k1 = (last - self.origin) // self.block
        if first < self._keep_from:
            raise ValueError(f"day {first} is before the first kept day {self._keep_from}")
        with self._lock:
            for k in range(k0, k1 + 1):
                self._ensure(k)
            parts = [self._values[k] for k in range(k0, k1 + 1)]
        stacked = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
        start = first - (self.origin + k0 * self.block)
        return stacked[start : start + last - first + 1]
