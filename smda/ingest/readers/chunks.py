"""HDF5 chunks decoded on every core, outside the HDF5 lock.

h5py decodes the chunks of a dataset one after the other, and smda reads netCDF-4/HDF5 only
while holding :data:`smda.storage.iolock.HDF5_IO` (the C libraries are not thread-safe), so a
provider file's decompression used one core and kept every other reader waiting. The providers'
files use the standard pipeline — deflate (zlib), usually after the byte shuffle — which needs no
HDF5 code to undo: :func:`read_raw` copies the *stored* bytes of each chunk (plain I/O, under the
lock), and :func:`decode` inflates and un-shuffles them in threads (``zlib`` and numpy's copies
release the GIL) with no lock held. Any other layout or filter (szip, Fletcher-32, a compound or
big-endian type...) is left to h5py: :func:`read_raw` returns ``None`` for it.
"""

from __future__ import annotations

import os
import zlib
from concurrent.futures import Executor, Future
from dataclasses import dataclass

import h5py
import numpy as np
import numpy.typing as npt

__all__ = ["Decoding", "RawChunks", "decode", "decode_workers", "read_raw"]

DEFLATE = 1
"""HDF5 filter id of deflate (zlib)."""
SHUFFLE = 2
"""HDF5 filter id of the byte shuffle."""


@dataclass(frozen=True)
class RawChunks:
    """The stored chunks of one dataset, as its file holds them.

    ``filters`` is the write pipeline in order (decoding runs it backwards); each chunk is
    ``(offset, filter_mask, bytes)`` where bit *i* of the mask says filter *i* was skipped.
    """

    shape: tuple[int, ...]
    dtype: np.dtype[np.number]
    chunk_shape: tuple[int, ...]
    filters: tuple[int, ...]
    fill: float | int
    chunks: list[tuple[tuple[int, ...], int, bytes | memoryview]]


def decode_workers() -> int:
    """Threads for decoding: the cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def read_raw(dset: h5py.Dataset, image: bytes | None = None) -> RawChunks | None:
    """The stored chunk bytes of ``dset`` (call while holding ``HDF5_IO``), or ``None`` when its
    layout or filters need h5py (not chunked, a filter other than deflate and shuffle, a type
    other than a native-order integer or float).

    ``image``: the whole file's bytes when it is in memory (a ZIP member): chunks are then views
    of it, not copies read through h5py's file-object driver.
    """
    dtype = dset.dtype
    if dset.chunks is None or dtype.kind not in "iuf" or not dtype.isnative or dset.ndim == 0:
        return None
    plist = dset.id.get_create_plist()
    filters = tuple(int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters()))
    if not set(filters) <= {DEFLATE, SHUFFLE}:
        return None
    view = memoryview(image) if image is not None and dset.file.userblock_size == 0 else None
    chunks: list[tuple[tuple[int, ...], int, bytes | memoryview]] = []
    for i in range(dset.id.get_num_chunks()):
        info = dset.id.get_chunk_info(i)
        offset = tuple(int(o) for o in info.chunk_offset)
        if view is not None and info.byte_offset + info.size <= len(view):
            chunks.append(
                (
                    offset,
                    int(info.filter_mask),
                    view[info.byte_offset : info.byte_offset + info.size],
                )
            )
        else:
            mask, data = dset.id.read_direct_chunk(offset)
            chunks.append((offset, int(mask), data))
    fill = dset.fillvalue
    return RawChunks(tuple(dset.shape), dtype, tuple(dset.chunks), filters, fill.item(), chunks)


def _unshuffle(
    data: bytes | memoryview | npt.NDArray[np.uint8],
    itemsize: int,
    into: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Undo HDF5's byte shuffle: ``itemsize`` planes of n bytes back into n items (written into
    ``into``, n × itemsize bytes, when given)."""
    planes = np.frombuffer(data, np.uint8)
    n = planes.size // itemsize
    out = np.empty((n, itemsize), np.uint8) if into is None else into.reshape(n, itemsize)
    for k in range(itemsize):  # one strided pass per byte plane: far faster than planes.T
        out[:, k] = planes[k * n : (k + 1) * n]
    return out.reshape(-1)


def _chunk(
    raw: RawChunks, mask: int, data: bytes | memoryview, into: npt.NDArray[np.number] | None
) -> npt.NDArray[np.number]:
    """One chunk decoded to its full (chunk_shape) array: ``into`` (a C-contiguous array of
    that shape, e.g. the output's block) when given and the last filter is the shuffle."""
    size = int(np.prod(raw.chunk_shape)) * raw.dtype.itemsize
    buf: bytes | memoryview | npt.NDArray[np.uint8] = data
    direct = False
    for i in range(len(raw.filters) - 1, -1, -1):
        if mask & (1 << i):
            continue
        if raw.filters[i] == DEFLATE:  # the output's size is known: no growing buffer
            buf = zlib.decompress(buf, bufsize=size)
        elif raw.dtype.itemsize > 1:
            direct = into is not None and i == 0 and len(buf) == size
            target = into.reshape(-1).view(np.uint8) if direct and into is not None else None
            buf = _unshuffle(buf, raw.dtype.itemsize, target)
    flat = np.frombuffer(buf, np.uint8) if not isinstance(buf, np.ndarray) else buf
    if flat.size != size:
        raise ValueError(f"a chunk decodes to {flat.size} bytes, expected {size}")
    if direct and into is not None:
        return into
    return flat.view(raw.dtype).reshape(raw.chunk_shape)


@dataclass(frozen=True)
class Decoding:
    """A dataset being decoded on a pool: :meth:`result` waits for it."""

    out: npt.NDArray[np.number]
    parts: list[Future[None]]

    def result(self) -> npt.NDArray[np.number]:
        """The dataset's values (the first chunk's error, if one failed)."""
        for part in self.parts:
            part.result()
        return self.out


def decode(raw: RawChunks, pool: Executor) -> Decoding:
    """The dataset's values, decoded chunk by chunk on ``pool``.

    Chunks the file does not hold take the dataset's fill value, as h5py gives them.
    """
    grid = [-(-s // c) for s, c in zip(raw.shape, raw.chunk_shape, strict=True)]
    complete = len(raw.chunks) == int(np.prod(grid))
    out = np.empty(raw.shape, raw.dtype) if complete else np.full(raw.shape, raw.fill, raw.dtype)

    def place(offset: tuple[int, ...], mask: int, data: bytes | memoryview) -> None:
        box = tuple(
            slice(o, min(o + c, s))
            for o, c, s in zip(offset, raw.chunk_shape, raw.shape, strict=True)
        )
        block = out[box]
        whole = block.shape == raw.chunk_shape and block.flags.c_contiguous
        values = _chunk(raw, mask, data, block if whole else None)
        if values is not block:
            block[...] = values[tuple(slice(0, b.stop - b.start) for b in box)]

    return Decoding(out, [pool.submit(place, *chunk) for chunk in raw.chunks])
