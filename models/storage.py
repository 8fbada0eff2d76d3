"""Photos and videos in an fsspec store (a local folder by default, s3://… with s3fs).

Paths inside the store are ours alone: `photos/<sha256>` and `videos/<group>/<item>.mp4`;
a name a user gave is kept in the database, never used as a path.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from reelroute.models.errors import InvalidInput, NotFound
from reelroute.models.settings import Settings
from reelroute.models.tables import Group, Photo
from reelroute.models.text import control_problem

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 16


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


@dataclass(frozen=True)
class ImageInfo:
    """What we learnt about an accepted image."""

    format: str
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes, settings: Settings) -> ImageInfo:
    """Check that `data` is a real JPEG, PNG or WebP image within the size limits.

    Raises InvalidInput with a message that says what to fix.
    """
    from PIL import Image, UnidentifiedImageError  # only where uploads are checked

    if len(data) > settings.max_upload_bytes:
        raise InvalidInput(
            [
                f"photo: over the limit of {settings.max_upload_bytes:,} bytes "
                "(REELROUTE_MAX_UPLOAD_BYTES); send a smaller file"
            ]
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format, (width, height) = image.format or "", image.size
                if width * height > settings.max_image_pixels:
                    raise InvalidInput(
                        [
                            f"photo: {width}x{height} pixels is over the limit of "
                            f"{settings.max_image_pixels} (REELROUTE_MAX_IMAGE_PIXELS)"
                        ]
                    )
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(
            [
                f"photo: its pixels are over the limit of {settings.max_image_pixels} "
                "(REELROUTE_MAX_IMAGE_PIXELS); send a smaller image"
            ]
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(
            ["photo: is not a readable image; upload a JPEG, PNG or WebP file"]
        ) from None
    if image_format not in ACCEPTED_FORMATS:
        raise InvalidInput(
            [f"photo: {image_format or 'this'} format is not accepted; use JPEG, PNG or WebP"]
        )
    if min(width, height) < MIN_SIDE:
        raise InvalidInput([f"photo: {width}x{height} is too small; use at least {MIN_SIDE} px"])
    return ImageInfo(image_format, ACCEPTED_FORMATS[image_format], width, height)


def image_problems(data: bytes, settings: Settings) -> tuple[ImageInfo | None, list[str]]:
    """inspect_image's verdict as a value: the image's info, or what is wrong with it."""
    try:
        return inspect_image(data, settings), []
    except InvalidInput as error:
        return None, [problem.removeprefix("photo: ") for problem in error.problems]


def store_photo(
    session: Session,
    *,
    storage: Storage,
    group_id: uuid.UUID,
    data: bytes,
    filename: str,
    settings: Settings,
    generated_prompt: str | None = None,
) -> Photo:
    """Validate an uploaded image, store it by content hash and record it in the group.

    The same image uploaded twice to a group gives back the first photo.
    """
    if session.get(Group, group_id) is None:
        raise NotFound(f"no group {group_id}")
    info = inspect_image(data, settings)
    return store_inspected(session, storage, group_id, data, filename, info, generated_prompt)


def store_inspected(
    session: Session,
    storage: Storage,
    group_id: uuid.UUID,
    data: bytes,
    filename: str,
    info: ImageInfo,
    generated_prompt: str | None = None,
) -> Photo:
    """Store an image inspect_image accepted, in an existing group (content-addressed: the same
    image twice in a group is one photo)."""
    digest = hashlib.sha256(data).hexdigest()
    existing = session.exec(
        select(Photo).where(Photo.group_id == group_id, Photo.sha256 == digest)
    ).first()
    if existing is not None:
        return existing
    path = photo_path(digest)
    if not storage.exists(path):
        storage.write(path, data)
    photo = Photo(
        group_id=group_id,
        storage_path=path,
        original_filename=filename[:255],
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        bytes=len(data),
        sha256=digest,
        generated_prompt=generated_prompt,
    )
    session.add(photo)
    session.flush()
    return photo


def store_photos(
    session: Session,
    *,
    storage: Storage,
    group_id: uuid.UUID,
    files: Sequence[tuple[str, bytes]],
    settings: Settings,
) -> list[Photo]:
    """Store several uploads `(filename, data)` in a group: every file is checked first, and
    one bad file refuses them all (InvalidInput names each bad file and what is wrong)."""
    if session.get(Group, group_id) is None:
        raise NotFound(f"no group {group_id}")
    if not files:
        raise InvalidInput(["photos: none given; choose at least one image"])
    problems = []
    infos = []
    for number, (filename, data) in enumerate(files, start=1):
        info, found = image_problems(data, settings)
        if (control := control_problem(filename)) is not None:
            found = [f"filename {control}", *found]
            filename = repr(filename)
        infos.append(info)
        problems += [f"photo {number} ({filename}): {problem}" for problem in found]
    if problems:
        raise InvalidInput(problems)
    return [
        store_inspected(session, storage, group_id, data, filename, info)
        for (filename, data), info in zip(files, infos, strict=True)
        if info is not None
    ]
