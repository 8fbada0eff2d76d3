"""Photos from outside: the image checks (a real JPEG, PNG or WebP within the size limits) and the
photo rows of a group, stored content-addressed in the file store (models.store.files).
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from sqlmodel import Session, select

from reelroute.models.core.errors import InvalidInput, NotFound
from reelroute.models.core.settings import Settings
from reelroute.models.core.tables import Group, Photo
from reelroute.models.core.text import control_problem
from reelroute.models.store.files import Storage, photo_path

ACCEPTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MIN_SIDE = 16


@dataclass(frozen=True)
class ImageInfo:
    """What we learnt about an accepted image."""

    format: str
    content_type: str
    width: int
    height: int


PhotoData = bytes | BinaryIO
"""A photo's content: bytes, or a file open for reading (an upload spooled to disk), which is
read in chunks and never held whole."""


def size_of(data: PhotoData) -> int:
    """The content's length in bytes."""
    if isinstance(data, bytes):
        return len(data)
    data.seek(0, io.SEEK_END)
    size = data.tell()
    data.seek(0)
    return size


def sha256_of(data: PhotoData) -> str:
    """The content's SHA-256, read in chunks."""
    if isinstance(data, bytes):
        return hashlib.sha256(data).hexdigest()
    data.seek(0)
    digest = hashlib.file_digest(data, "sha256")  # type: ignore[arg-type]
    data.seek(0)
    return digest.hexdigest()


def inspect_image(data: PhotoData, settings: Settings) -> ImageInfo:
    """Check that `data` is a real JPEG, PNG or WebP image within the size limits.

    Raises InvalidInput with a message that says what to fix.
    """
    from PIL import Image, UnidentifiedImageError  # only where uploads are checked

    if size_of(data) > settings.api.max_upload_bytes:
        raise InvalidInput(
            [
                f"photo: over the limit of {settings.api.max_upload_bytes:,} bytes "
                "(REELROUTE_MAX_UPLOAD_BYTES); send a smaller file"
            ]
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = io.BytesIO(data) if isinstance(data, bytes) else data
            source.seek(0)
            with Image.open(source) as image:
                image_format, (width, height) = image.format or "", image.size
                if width * height > settings.api.max_image_pixels:
                    raise InvalidInput(
                        [
                            f"photo: {width}x{height} pixels is over the limit of "
                            f"{settings.api.max_image_pixels} (REELROUTE_MAX_IMAGE_PIXELS)"
                        ]
                    )
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(
            [
                f"photo: its pixels are over the limit of {settings.api.max_image_pixels} "
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


def image_problems(data: PhotoData, settings: Settings) -> tuple[ImageInfo | None, list[str]]:
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
    data: PhotoData,
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
    data: PhotoData,
    filename: str,
    info: ImageInfo,
    generated_prompt: str | None = None,
) -> Photo:
    """Store an image inspect_image accepted, in an existing group (content-addressed: the same
    image twice in a group is one photo)."""
    digest = sha256_of(data)
    existing = session.exec(
        select(Photo).where(Photo.group_id == group_id, Photo.sha256 == digest)
    ).first()
    if existing is not None:
        return existing
    path = photo_path(digest)
    if not storage.exists(path):
        if isinstance(data, bytes):
            storage.write(path, data)
        else:
            data.seek(0)
            storage.write_stream(path, data)
    photo = Photo(
        group_id=group_id,
        storage_path=path,
        original_filename=filename[:255],
        content_type=info.content_type,
        width=info.width,
        height=info.height,
        bytes=size_of(data),
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
    files: Sequence[tuple[str, PhotoData]],
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
