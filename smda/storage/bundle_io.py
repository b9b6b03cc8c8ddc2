"""Model bundles on disk (an adapter: the science core's :class:`~smda.science.bundle.ModelBundle`
only turns itself into a dict and arrays).

A bundle directory holds three files, each written atomically (:mod:`smda.storage.atomic`):

- ``model.txt`` — the LightGBM model string (LightGBM's own text format);
- ``bundle.json`` — everything else of :meth:`ModelBundle.to_parts` (feature list and order,
  spec, hyper-parameters, CV report, input hashes, TC statistics) plus ``version``;
- ``arrays.npz`` — the climatology and the CDF tables.

:func:`from_files` checks that the content still hashes to the recorded ``version``.

Compiled inference
------------------
:func:`compiled_predictor` compiles a bundle's booster to native code with tl2cgen (treelite's
model compiler, through the system C compiler) once per bundle version, caches the shared
library as ``<cache>/<version>-q.so`` and returns a :data:`smda.science.bundle.Predict` for
:func:`smda.science.cycle.step`'s ``predict``. Thresholds are quantised (``quantize=1``: each split
compares integer bin indices), which is what makes it ~3× faster than native LightGBM
prediction on 2 threads; predictions are identical. Optional dependencies:
``tl2cgen==1.0.0`` and ``treelite==4.1.2`` (the treelite tl2cgen 1.0.0 is built against).

The library is built in a temporary folder and renamed into place, and its size and SHA-256
are recorded beside it (``<version>-q.json``); it is loaded only when it matches the record
(:func:`compiled_problem`), else compiled again (logged and counted as a repair). The record
guards against truncation and accidental change, not against someone who can write the data
directory: such a person can also replace the record, so the data directory must be writable by
smda's user only.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from smda.science.bundle import ModelBundle, Predict
from smda.storage.atomic import atomic_write_bytes
from smda.storage.integrity import file_digest, note_repair, sha256_of

__all__ = ["compiled_predictor", "compiled_problem", "from_files", "to_files"]

MODEL, META, ARRAYS = "model.txt", "bundle.json", "arrays.npz"


def to_files(bundle: ModelBundle, directory: Path | str) -> Path:
    """Write ``bundle`` into ``directory`` (created if needed); returns the directory."""
    target = Path(directory)
    meta, arrays = bundle.to_parts()
    model = meta.pop("model")
    meta["version"] = bundle.version
    buffer = io.BytesIO()
    np.savez(buffer, **cast(dict[str, Any], arrays))
    atomic_write_bytes(target / MODEL, model.encode())
    atomic_write_bytes(target / ARRAYS, buffer.getvalue())
    atomic_write_bytes(target / META, json.dumps(meta, indent=1, sort_keys=True).encode())
    return target


def from_files(directory: Path | str) -> ModelBundle:
    """Read a bundle written by :func:`to_files`.

    Raises
    ------
    ValueError
        If the files do not hash to the version recorded in ``bundle.json``.
    """
    source = Path(directory)
    meta = json.loads((source / META).read_text())
    recorded = meta.pop("version", None)
    meta["model"] = (source / MODEL).read_text()
    with np.load(source / ARRAYS, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    bundle = ModelBundle.from_parts(meta, arrays)
    if recorded != bundle.version:
        raise ValueError(
            f"bundle in {source} hashes to {bundle.version}, but bundle.json records "
            f"{recorded}: the files were changed or mixed up"
        )
    return bundle


def compiled_predictor(
    bundle: ModelBundle, cache_dir: Path | str, *, threads: int | None = None
) -> Predict:
    """A native-code predictor of ``bundle`` (module docstring), compiled on first use.

    Parameters
    ----------
    bundle:
        The model.
    cache_dir:
        Where compiled libraries are kept (one per bundle version; compiling takes ~30 s
        for 500 trees × 63 leaves).
    threads:
        Threads for compiling and predicting (default: the bundle's ``num_threads``).

    Raises
    ------
    ImportError
        If tl2cgen/treelite are not installed (the message gives the requirement).
    """
    try:
        import tl2cgen
        import treelite
    except ImportError as exc:
        raise ImportError(
            "compiled inference needs the optional packages tl2cgen==1.0.0 and "
            "treelite==4.1.2 (and a C compiler): pip install tl2cgen==1.0.0 treelite==4.1.2"
        ) from exc
    n = threads or bundle.hyper.num_threads
    lib = Path(cache_dir) / f"{bundle.version}-q.so"
    problem = compiled_problem(lib)
    if problem is not None:
        if problem != "not compiled":
            note_repair("compiled", f"{lib}: {problem}; compiling it again")
        lib.parent.mkdir(parents=True, exist_ok=True)
        model = treelite.frontend.from_lightgbm(bundle.booster)
        with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
            built = Path(tmp) / lib.name
            params = {"quantize": 1, "parallel_comp": n}
            tl2cgen.export_lib(model, toolchain="gcc", libpath=str(built), params=params, nthread=n)
            sha, size = sha256_of(built)
            os.replace(built, lib)  # atomic: a reader sees no half-written library
        record = {"file": lib.name, "sha256": sha, "size": size, "bundle": bundle.version}
        atomic_write_bytes(_record_path(lib), json.dumps(record, indent=1).encode())
    try:
        predictor = tl2cgen.Predictor(str(lib), nthread=n)
    except tl2cgen.TL2cgenError as exc:  # more threads than OpenMP allows here (a Dask worker)
        if "nthread" not in str(exc):
            raise
        predictor = tl2cgen.Predictor(str(lib), nthread=-1)  # -1: as many as OpenMP allows

    def predict(rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = predictor.predict(tl2cgen.DMatrix(np.asarray(rows, np.float32), dtype="float32"))
        return np.asarray(out, dtype=np.float32).reshape(-1)

    return predict


def _record_path(lib: Path) -> Path:
    return lib.with_suffix(".json")


def compiled_problem(lib: Path | str) -> str | None:
    """What is wrong with a compiled predictor against the record written with it (size and
    SHA-256 in ``<version>-q.json``): None when intact, "not compiled" when absent.

    A library is loaded only when intact: a truncated one would kill the process with SIGBUS
    when mapped, a changed one would run whatever it holds.
    """
    lib = Path(lib)
    if not lib.exists():
        return "not compiled"
    try:
        record = json.loads(_record_path(lib).read_text())
        expected, size = str(record["sha256"]), int(record["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return "it has no readable digest record"
    found = file_digest(lib)
    if found is None:
        return "not compiled"
    if found[1] != size:
        return f"its size is {found[1]} bytes, {size} were recorded"
    if found[0] != expected:
        return "its SHA-256 differs from the recorded one"
    return None
