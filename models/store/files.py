"""The file store: photos and videos in an fsspec store (a local folder by default, s3://…
with s3fs).

Paths inside the store are ours alone: `photos/<sha256>` and `videos/<group>/<item>.mp4`;
a name a user gave is kept in the database, never used as a path.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reelroute.models.core.errors import NotFound

CHUNK = 1024 * 1024


class Storage:
    """A store rooted at an fsspec URL; every read and write goes through it.

    A local folder by default; `s3://bucket/prefix` through s3fs, configured the AWS way
    (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION`, and `AWS_ENDPOINT_URL`
    for an S3-compatible server; docs/operations.md).
    """

    def __init__(self, url: str) -> None:
        import fsspec

        self.url = url.rstrip("/")
        # Other processes write here too: never answer `exists` from a cached listing.
        options = {"use_listings_cache": False} if self.url.startswith("s3://") else {}
        self.fs, self.root = fsspec.core.url_to_fs(self.url, **options)
        self.fs.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}"

    @property
    def _local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in protocol if isinstance(protocol, tuple) else protocol == "file"

    def write(self, path: str, data: bytes) -> None:
        """Write `data` at `path` (relative to the root), creating folders. Atomic: on local disk
        through a temporary file and a rename; an object store's put is atomic by itself."""
        full = self._full(path)
        if not self._local:
            self.fs.pipe_file(full, data)
            return
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{full}.{uuid.uuid4().hex}.part"
        self.fs.pipe_file(temporary, data)
        self.fs.mv(temporary, full)

    def write_file(self, path: str, local: Path) -> None:
        """Write the local file `local` at `path`, streamed (never whole in memory); atomic as
        `write`."""
        full = self._full(path)
        if not self._local:
            self.fs.put_file(str(local), full)
            return
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{full}.{uuid.uuid4().hex}.part"
        self.fs.put_file(str(local), temporary)
        self.fs.mv(temporary, full)

    def write_stream(self, path: str, source: BinaryIO) -> None:
        """Write what `source` holds at `path`, copied in chunks (never whole in memory);
        atomic as `write`."""
        full = self._full(path)
        if not self._local:
            with self.fs.open(full, "wb") as target:
                shutil.copyfileobj(source, target, CHUNK)
            return
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{full}.{uuid.uuid4().hex}.part"
        with self.fs.open(temporary, "wb") as target:
            shutil.copyfileobj(source, target, CHUNK)
        self.fs.mv(temporary, full)

    def chunks(self, path: str) -> Iterator[bytes]:
        """The bytes at `path`, a chunk at a time (a video is never read whole); NotFound when
        there is no such file."""
        try:
            source = self.fs.open(self._full(path), "rb")
        except FileNotFoundError:
            raise NotFound(f"no file {path} in storage") from None
        with source:
            while chunk := source.read(CHUNK):
                yield chunk

    def size(self, path: str) -> int:
        """The size of the file at `path` in bytes; NotFound when there is none."""
        try:
            return int(self.fs.size(self._full(path)))
        except FileNotFoundError:
            raise NotFound(f"no file {path} in storage") from None

    def read(self, path: str) -> bytes:
        """The bytes at `path`; NotFound when there is no such file (the message names the
        file's place in storage, never where the storage is)."""
        try:
            data: bytes = self.fs.cat_file(self._full(path))
        except FileNotFoundError:
            raise NotFound(f"no file {path} in storage") from None
        return data

    def move(self, source: str, target: str) -> None:
        """Move `source` to `target` (both relative to the root), replacing nothing twice: when
        `source` is gone and `target` is there, an earlier call already did it."""
        if not self.exists(source) and self.exists(target):
            return
        full = self._full(target)
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(self._full(source), full)

    def delete(self, path: str) -> None:
        """Remove the file at `path`, if there is one."""
        if self.exists(path):
            self.fs.rm_file(self._full(path))

    def exists(self, path: str) -> bool:
        """True when a file is stored at `path`."""
        return bool(self.fs.exists(self._full(path)))

    def local_path(self, path: str) -> str | None:
        """A filesystem path for `path` when the store is a local folder, else None."""
        return self._full(path) if self._local else None


def photo_path(sha256: str) -> str:
    """Where a photo with this content hash is stored."""
    return f"photos/{sha256}"


def video_path(group_id: uuid.UUID | None, item_id: uuid.UUID) -> str:
    """Where the video of an item is stored."""
    return f"videos/{group_id or 'ungrouped'}/{item_id}.mp4"


def staged_video_path(group_id: uuid.UUID | None, item_id: uuid.UUID, attempt: int) -> str:
    """Where one attempt's video waits until the attempt's completion is accepted."""
    return f"videos/{group_id or 'ungrouped'}/{item_id}.attempt-{attempt}.part"
