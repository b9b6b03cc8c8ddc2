"""The model registry of one region: versioned bundles on disk and which one is current.

Layout under ``<data_dir>/models/<region_key>/``::

    <version>/            one model bundle (:func:`smda.storage.bundle_io.to_files`: model.txt,
                          bundle.json, arrays.npz); the version is the bundle's content hash
    current.json          {"version": …, "history": [{"version": …, "promoted_at": …}, …]}
    compiled/             native predictors (:func:`smda.storage.bundle_io.compiled_predictor`), one
                          shared library per version

Registering is idempotent: a version already on disk is not rewritten, and promoting the
version that is already current changes nothing. A bundle directory is written under a
temporary name and renamed into place, and ``current.json`` is replaced atomically, so a crash
never leaves a half-written bundle visible or a pointer to one. Loading checks that the files
still hash to their version (a corrupt bundle raises :class:`~smda.errors.MalformedFile`), once
per version of its files in a process: a bundle whose files are unchanged (the same inodes,
sizes and modification times) is the one already loaded, so the tasks of a flow, each opening
its own runtime, do not read and hash a global bundle (~0.1–0.3 s) every time.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smda.errors import MalformedFile, NoModel
from smda.science.bundle import ModelBundle, Predict
from smda.storage.atomic import atomic_write_bytes
from smda.storage.bundle_io import META, compiled_predictor, from_files, to_files
from smda.storage.locks import locked_file

__all__ = ["CURRENT", "ModelRegistry", "NoModel", "models_dir"]

LOG = logging.getLogger(__name__)

CURRENT = "current.json"
"""The file naming the current version and the history of promotions."""
COMPILED = "compiled"
_LOADED: OrderedDict[tuple[Any, ...], ModelBundle] = OrderedDict()
"""Bundles loaded in this process, by folder, version and the identity of their files."""
_LOADED_LOCK = threading.Lock()
_KEEP_LOADED = 2
"""Bundles kept loaded (the current one and the one before a promotion)."""


def _files_identity(folder: Path) -> tuple[tuple[str, int, int, int], ...] | None:
    """(name, inode, mtime, size) of the files of ``folder``; None when it cannot be read."""
    try:
        return tuple(
            sorted(
                (p.name, st.st_ino, st.st_mtime_ns, st.st_size)
                for p in folder.iterdir()
                if p.is_file()
                for st in [p.stat()]
            )
        )
    except OSError:
        return None


def models_dir(data_dir: Path | str, region: str) -> Path:
    """Where a region's models live: ``<data_dir>/models/<region>`` (``region`` the grid's key,
    :func:`smda.storage.store.region_key`)."""
    return Path(data_dir) / "models" / region


class ModelRegistry:
    """Versioned model bundles of one region (see the module docstring).

    Parameters
    ----------
    root:
        The region's folder, ``<data_dir>/models/<region_key>`` (created when needed).
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._predictors: dict[tuple[str, bool], Predict] = {}
        self._warned = False

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- bundles --------------------------------------------------------------------------------
    def path(self, version: str) -> Path:
        """Folder of ``version`` (whether or not it exists)."""
        return self.root / version

    def register(self, bundle: ModelBundle, *, promote: bool = True) -> Path:
        """Store ``bundle`` (unless its version is already stored) and make it current.

        Returns
        -------
        The bundle's folder.
        """
        target = self.path(bundle.version)
        if not self._intact(target, bundle.version):
            self._write(bundle, target)
            LOG.info("registered model %s in %s", bundle.version, target)
        if promote:
            self.promote(bundle.version)
        return target

    def _intact(self, target: Path, version: str) -> bool:
        """Whether ``target`` holds an uncorrupted bundle of ``version``."""
        if not (target / META).exists():
            return False
        try:
            return from_files(target).version == version
        except (OSError, ValueError, KeyError):
            return False

    def _write(self, bundle: ModelBundle, target: Path) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.root))
        tmp.chmod(0o755)  # as a plain mkdir (mkdtemp makes it private)
        try:
            to_files(bundle, tmp)
            if target.exists():  # a broken earlier attempt: replace it
                shutil.rmtree(target)
            try:
                os.replace(tmp, target)
            except OSError:  # another process registered the same version meanwhile
                if not self._intact(target, bundle.version):
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def versions(self) -> list[str]:
        """Stored versions, oldest registration first."""
        if not self.root.is_dir():
            return []
        found = [
            p
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / META).exists()
        ]
        return [
            p.name for p in sorted(found, key=lambda p: ((p / META).stat().st_mtime_ns, p.name))
        ]

    def load(self, version: str) -> ModelBundle:
        """The bundle of ``version``.

        Raises
        ------
        NoModel
            If the version is not stored.
        MalformedFile
            If its files are unreadable or do not hash to the version.
        """
        target = self.path(version)
        identity = _files_identity(target)
        key = (str(target.resolve()), version, identity)
        if identity is not None:
            with _LOADED_LOCK:
                if (known := _LOADED.get(key)) is not None:
                    _LOADED.move_to_end(key)
                    return known
        if not (target / META).exists():
            raise NoModel(
                f"model {version} is not in the registry {self.root} (stored: "
                f"{', '.join(self.versions()) or 'none'}); run `smda train --start … --end …`"
            )
        try:
            bundle = from_files(target)
        except (OSError, ValueError, KeyError) as exc:
            raise MalformedFile(
                f"model bundle {target} is corrupt ({exc}); delete the folder and register the "
                "model again (`smda train --start … --end …`), or promote another version"
            ) from exc
        if bundle.version != version:
            raise MalformedFile(
                f"model bundle {target} holds version {bundle.version}, not {version}; "
                "delete the folder and register the model again"
            )
        if identity is not None and _files_identity(target) == identity:  # unchanged meanwhile
            with _LOADED_LOCK:
                _LOADED[key] = bundle
                while len(_LOADED) > _KEEP_LOADED:
                    _LOADED.popitem(last=False)
        return bundle

    # -- the current version --------------------------------------------------------------------
    def _pointer(self) -> dict[str, Any] | None:
        path = self.root / CURRENT
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise MalformedFile(
                f"{path} is unreadable ({exc}); promote a version again "
                "(`smda train` registers and promotes one)"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("version"), str):
            raise MalformedFile(f"{path} names no version; promote a version again")
        return data

    def current_version(self) -> str | None:
        """The current version, or None when no model has been promoted."""
        pointer = self._pointer()
        return None if pointer is None else str(pointer["version"])

    def history(self) -> list[dict[str, str]]:
        """Promotions, oldest first: ``[{"version": …, "promoted_at": ISO time UTC}, …]``."""
        pointer = self._pointer()
        return [] if pointer is None else list(pointer.get("history", []))

    def current(self) -> ModelBundle:
        """The current bundle.

        Raises
        ------
        NoModel
            If no model has been registered for the region.
        """
        version = self.current_version()
        if version is None:
            raise NoModel(
                f"no model is registered in {self.root}: run `smda train --start … --end …` "
                "for this region first"
            )
        return self.load(version)

    def promote(self, version: str) -> None:
        """Make a stored ``version`` current (a no-op when it already is).

        Raises
        ------
        NoModel
            If the version is not stored.
        """
        if not (self.path(version) / META).exists():
            raise NoModel(f"cannot promote {version}: it is not in the registry {self.root}")
        with locked_file(self.root / CURRENT):
            pointer = self._pointer() or {"history": []}
            if pointer.get("version") == version:
                return
            now = datetime.now(UTC).isoformat(timespec="seconds")
            history = [*pointer.get("history", []), {"version": version, "promoted_at": now}]
            payload = {"version": version, "history": history}
            atomic_write_bytes(self.root / CURRENT, json.dumps(payload, indent=1).encode())
        LOG.info("model %s is now current in %s", version, self.root)

    # -- inference ------------------------------------------------------------------------------
    def predictor(self, bundle: ModelBundle, *, compiled: bool = True) -> Predict:
        """How to predict with ``bundle``: compiled native code (tl2cgen, cached under
        ``compiled/``) when ``compiled`` and possible, else LightGBM's own prediction.

        When tl2cgen/treelite are not installed or compiling fails, a warning is logged (once
        per registry) and the native predictor is returned: predictions are the same, only
        slower.
        """
        key = (bundle.version, compiled)
        if key not in self._predictors:
            self._predictors[key] = self._make_predictor(bundle, compiled)
        return self._predictors[key]

    def _make_predictor(self, bundle: ModelBundle, compiled: bool) -> Predict:
        if not compiled:
            return bundle.predict
        try:
            return compiled_predictor(bundle, self.root / COMPILED)
        except Exception as exc:  # any failure of the optional compiler falls back (logged)
            if not self._warned:
                LOG.warning(
                    "compiled inference unavailable (%s: %s); using LightGBM's native "
                    "prediction (same results, slower)",
                    type(exc).__name__,
                    exc,
                )
                self._warned = True
            return bundle.predict
