"""A tree of files on a local folder or on object storage (any fsspec URL: ``s3://``...).

:class:`Files` maps the local-looking paths of a tree (``root / "cog" / ...``: the layout code
and the relative STAC links work on paths) onto where the files really are. On a local folder
the paths are the files. On object storage each path is a key under the URL, and every write
is atomic the object-storage way (:func:`put_atomically`): the bytes go to a temporary sibling
key (``.<name>.<uuid>.part``), which is then copied onto the final key server-side and removed,
so a reader sees the previous object or the complete new one, never a partial one.

Credentials and the endpoint of ``s3://`` come from the environment, read by s3fs/botocore
themselves (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``,
``AWS_REGION``, ``AWS_PROFILE``...); smda never sees them.

There are no per-folder locks on object storage (:meth:`Files.lock` is then a no-op): one
writer per prefix is the operator's job.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from smda.storage.atomic import atomic_write_bytes
from smda.storage.integrity import file_digest
from smda.storage.locks import locked_file

__all__ = ["Files", "put_atomically"]

_CHUNK = 1 << 20


def put_atomically(
    fs: fsspec.AbstractFileSystem, key: str, upload: Callable[[str], object]
) -> None:
    """Upload with ``upload(part)`` to a temporary sibling key, then move it onto ``key``
    (on S3 a server-side copy: the final key appears complete or not at all)."""
    parent, name = key.rsplit("/", 1)
    part = f"{parent}/.{name}.{uuid.uuid4().hex}.part"
    fs.makedirs(parent, exist_ok=True)
    try:
        upload(part)
        fs.mv(part, key)
    finally:
        if fs.exists(part):
            fs.rm(part)


@dataclass(frozen=True)
class Files:
    """The files of a tree whose paths are under ``root`` (see the module docstring).

    Build with :meth:`at`. ``url`` is where the tree is (a local folder or an fsspec URL).
    """

    url: str
    fs: fsspec.AbstractFileSystem
    base: str
    root: Path

    @classmethod
    def at(cls, location: str | Path) -> Files:
        """The tree at ``location``: a local folder (or ``file://``) or an fsspec URL."""
        url = str(location).rstrip("/")
        fs, base = fsspec.core.url_to_fs(url)
        if isinstance(fs, LocalFileSystem):
            return cls(url, fs, base, Path(base) if "://" in url else Path(url))
        # a path that is never a local file: only its relative parts are used
        return cls(url, fs, base, Path("/", base))

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    def key(self, path: Path) -> str:
        """The filesystem key of ``path``."""
        if self.is_local:
            return str(path)
        return f"{self.base}/{path.relative_to(self.root).as_posix()}"

    def location(self, path: Path) -> str:
        """Where ``path`` is, for people: the local path, else its full URL."""
        if self.is_local:
            return str(path)
        return str(self.fs.unstrip_protocol(self.key(path)))

    def exists(self, path: Path) -> bool:
        return path.exists() if self.is_local else bool(self.fs.exists(self.key(path)))

    def read_bytes(self, path: Path) -> bytes | None:
        """The content of ``path``, or None when it does not exist."""
        try:
            return path.read_bytes() if self.is_local else bytes(self.fs.cat_file(self.key(path)))
        except FileNotFoundError:
            return None

    def write_bytes(self, path: Path, data: bytes) -> None:
        """Write ``data`` at ``path`` atomically."""
        if self.is_local:
            atomic_write_bytes(path, data)
        else:
            put_atomically(self.fs, self.key(path), lambda part: self.fs.pipe_file(part, data))

    @contextlib.contextmanager
    def writing(self, path: Path) -> Iterator[Path]:
        """Yield a local path to write ``path`` through; on success it becomes ``path``
        atomically. Locally it is ``path`` itself: the writer must be atomic (the COG and PNG
        writers are)."""
        if self.is_local:
            yield path
            return
        with tempfile.TemporaryDirectory(prefix="smda-products-") as tmpdir:
            local = Path(tmpdir) / path.name
            yield local
            key = self.key(path)
            put_atomically(self.fs, key, lambda part: self.fs.put_file(str(local), part))

    def unlink(self, path: Path) -> None:
        """Remove ``path`` (nothing when it does not exist)."""
        if self.is_local:
            path.unlink(missing_ok=True)
        elif self.fs.exists(key := self.key(path)):
            self.fs.rm(key)

    def glob(self, pattern: str) -> list[Path]:
        """The paths under ``root`` matching ``pattern`` (``"cog/*/smda_sm_*.tif"``)."""
        if self.is_local:
            return sorted(self.root.glob(pattern))
        found = self.fs.glob(f"{self.base}/{pattern}")
        return sorted(self.root / str(key)[len(self.base) + 1 :] for key in found)

    def digest(self, path: Path) -> tuple[str, int] | None:
        """SHA-256 (hex) and size of ``path``; None when it does not exist."""
        if self.is_local:
            return file_digest(path)
        sha, size = hashlib.sha256(), 0
        try:
            with self.fs.open(self.key(path), "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    sha.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            return None
        return sha.hexdigest(), size

    def lock(self, path: Path) -> contextlib.AbstractContextManager[None]:
        """Hold the lock of one read-modify-write of ``path``: a folder lock locally; none on
        object storage (one writer per prefix is the operator's job)."""
        return locked_file(path) if self.is_local else contextlib.nullcontext()
