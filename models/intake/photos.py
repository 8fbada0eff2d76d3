"""Photos from outside: the image checks (a real JPEG, PNG, WebP or HEIC/HEIF within the size
limits), one normalised copy of each, and the photo rows of a group, stored content-addressed in
the file store (models.store.files).

**One photo, normalised once** (`normalise`), and the same upright pixels for Wan, Runway, the
checks and the admin pages: a phone stores its pixels as the sensor read them with an EXIF
Orientation tag, which every viewer applies; so do we, once, at intake. The stored copy is 8-bit
sRGB RGB (an embedded ICC profile applied, CMYK, 16-bit and palette images converted, an alpha
channel flattened onto white), at most REELROUTE_PHOTO_MAX_SIDE pixels on its long side, JPEG,
and carries no metadata at all (EXIF, GPS, maker notes, XMP, IPTC, comments, the ICC profile):
nothing but pixels leaves our hosts. An animated image is refused (send a still). Photos stored
before this are normalised on their next use (`upright_bytes`, idempotent).
"""

from __future__ import annotations

import hashlib
import io
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlmodel import Session, select

from reelroute.models.core.errors import InvalidInput, NotFound
from reelroute.models.core.tables import Group, Photo
from reelroute.models.core.text import control_problem
from reelroute.models.intake.settings import IntakeConfig
from reelroute.models.store.files import Storage, photo_path

ACCEPTED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heif",
}
MIN_SIDE = 16
STORED_FORMAT = "JPEG"
STORED_QUALITY = 95
WHITE = (255, 255, 255)


def register_openers() -> None:
    """HEIC/HEIF (pillow-heif) among the formats Pillow opens; once per process."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


@dataclass(frozen=True)
class ImageInfo:
    """What we learnt about an accepted image."""

    format: str
    content_type: str
    width: int
    height: int
    normalised: bytes | None = field(default=None, repr=False)
    """The copy that is stored (`normalise`), once made."""


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


def inspect_image(data: PhotoData, settings: IntakeConfig) -> ImageInfo:
    """Check that `data` is a real JPEG, PNG, WebP or HEIC image within the size limits.

    Raises InvalidInput with a message that says what to fix.
    """
    from PIL import Image, UnidentifiedImageError  # only where uploads are checked

    register_openers()
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
            ["photo: is not a readable image; upload a JPEG, PNG, WebP or HEIC file"]
        ) from None
    if image_format not in ACCEPTED_FORMATS:
        raise InvalidInput(
            [f"photo: {image_format or 'this'} format is not accepted; use JPEG, PNG, WebP or HEIC"]
        )
    if min(width, height) < MIN_SIDE:
        raise InvalidInput([f"photo: {width}x{height} is too small; use at least {MIN_SIDE} px"])
    return ImageInfo(image_format, ACCEPTED_FORMATS[image_format], width, height)


def normalise(data: PhotoData, settings: IntakeConfig) -> tuple[bytes, ImageInfo]:
    """The stored copy of an accepted image (see the module's docstring) and what it is:
    upright, 8-bit sRGB RGB, at most REELROUTE_PHOTO_MAX_SIDE on its long side, a JPEG with no
    metadata. InvalidInput for an animated image."""
    from PIL import Image

    register_openers()
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    source.seek(0)
    with Image.open(source) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            raise InvalidInput(
                [f"photo: an animated image ({frames} frames); send one still photo"]
            )
        pixels = upright_rgb(image, settings.api.photo_max_side)
    buffer = io.BytesIO()
    pixels.save(buffer, format=STORED_FORMAT, quality=STORED_QUALITY)
    stored = buffer.getvalue()
    return stored, ImageInfo(
        STORED_FORMAT, ACCEPTED_FORMATS[STORED_FORMAT], pixels.width, pixels.height, stored
    )


def upright_rgb(image: Any, max_side: int) -> Any:
    """`image` (a PIL image) as a new 8-bit sRGB RGB image without any metadata: EXIF
    orientation applied, ICC profile converted to sRGB, alpha flattened onto white, scaled
    down to `max_side`. A fresh image: nothing of the source's `info` comes along."""
    from PIL import Image, ImageCms, ImageOps

    image.load()
    icc = image.info.get("icc_profile")
    picture = ImageOps.exif_transpose(image) or image
    if picture.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit or float grey
        picture = picture.point(lambda value: value / 256).convert("L")
    if picture.mode == "P":
        picture = picture.convert("RGBA" if "transparency" in picture.info else "RGB")
    if picture.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = picture.convert("RGBA")
        flat = Image.new("RGB", rgba.size, WHITE)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        picture = flat
    if icc and picture.mode in ("RGB", "CMYK", "L"):
        try:
            converted = ImageCms.profileToProfile(
                picture,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
            picture = converted if converted is not None else picture
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the pixels as they are
    picture = picture.convert("RGB")
    if max(picture.size) > max_side:
        picture = picture.copy()
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return Image.frombytes("RGB", picture.size, picture.tobytes())


def upright_bytes(data: bytes, max_side: int) -> bytes:
    """A stored photo as every provider and check receives it: as it is when it is already a
    normalised copy (a JPEG without metadata or orientation), else normalised now (photos
    stored before normalisation, on their next use)."""
    from PIL import Image

    register_openers()
    with Image.open(io.BytesIO(data)) as image:
        clean = (
            image.format == STORED_FORMAT
            and image.mode == "RGB"
            and not image.info.get("exif")
            and not image.info.get("icc_profile")
            and not image.info.get("xmp")
            and not image.info.get("comment")
            and all(marker == "APP0" for marker, _ in getattr(image, "applist", []))
            and max(image.size) <= max_side
        )
        if clean:
            return data
        pixels = upright_rgb(image, max_side)
    buffer = io.BytesIO()
    pixels.save(buffer, format=STORED_FORMAT, quality=STORED_QUALITY)
    return buffer.getvalue()


def image_problems(data: PhotoData, settings: IntakeConfig) -> tuple[ImageInfo | None, list[str]]:
    """inspect_image's verdict as a value: the image's info, or what is wrong with it."""
    try:
        inspect_image(data, settings)
        return normalise(data, settings)[1], []
    except InvalidInput as error:
        return None, [problem.removeprefix("photo: ") for problem in error.problems]


def store_photo(
    session: Session,
    *,
    storage: Storage,
    group_id: uuid.UUID,
    data: PhotoData,
    filename: str,
    settings: IntakeConfig,
    generated_prompt: str | None = None,
) -> Photo:
    """Validate an uploaded image, store it by content hash and record it in the group.

    The same image uploaded twice to a group gives back the first photo.
    """
    if session.get(Group, group_id) is None:
        raise NotFound(f"no group {group_id}")
    inspect_image(data, settings)
    _, info = normalise(data, settings)
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
    """Store an image inspect_image accepted (its normalised copy when `info` has one), in an
    existing group (content-addressed: the same image twice in a group is one photo); the
    upload itself too when the group keeps its originals."""
    original = data
    if info.normalised is not None:
        data = info.normalised
    digest = sha256_of(data)
    existing = session.exec(
        select(Photo).where(Photo.group_id == group_id, Photo.sha256 == digest)
    ).first()
    if existing is not None:
        return existing
    path = photo_path(digest)
    _write_once(storage, path, data)
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
        original_path=_keep_original(session, storage, group_id, original, data),
    )
    session.add(photo)
    session.flush()
    return photo


def _keep_original(
    session: Session,
    storage: Storage,
    group_id: uuid.UUID,
    original: PhotoData,
    stored: bytes | PhotoData,
) -> str | None:
    """Where the upload is kept as it came (`photos/originals/<sha256>`), when its group asks
    and it differs from the stored copy; None otherwise."""
    group = session.get(Group, group_id)
    if group is None or not group.keep_original_photos or original is stored:
        return None
    path = f"photos/originals/{sha256_of(original)}"
    _write_once(storage, path, original)
    return path


def _write_once(storage: Storage, path: str, data: PhotoData) -> None:
    """Store `data` at the content-addressed `path` unless it is there (a file in chunks)."""
    if storage.exists(path):
        return
    if isinstance(data, bytes):
        storage.write(path, data)
    else:
        data.seek(0)
        storage.write_stream(path, data)


def store_photos(
    session: Session,
    *,
    storage: Storage,
    group_id: uuid.UUID,
    files: Sequence[tuple[str, PhotoData]],
    settings: IntakeConfig,
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


def normalise_stored(session: Session, storage: Storage, settings: IntakeConfig) -> int:
    """Normalise the photos stored before intake did (in their place: a new content-addressed
    copy, the row pointed at it); idempotent, photos already normalised are left as they are.
    What `reelroute normalise-photos` runs once after an upgrade, so that a pull worker, which
    reads a photo from the store itself, gets the normalised copy too. Returns how many changed.
    """
    changed = 0
    for photo in session.exec(select(Photo).order_by(Photo.id)).all():  # type: ignore[arg-type]
        if not storage.exists(photo.storage_path):
            continue
        stored = storage.read(photo.storage_path)
        upright = upright_bytes(stored, settings.api.photo_max_side)
        if upright is stored:
            continue
        digest = sha256_of(upright)
        taken = session.exec(
            select(Photo).where(Photo.group_id == photo.group_id, Photo.sha256 == digest)
        ).first()
        if taken is not None:  # the group has the normalised copy already: leave this row
            continue
        path = photo_path(digest)
        _write_once(storage, path, upright)
        info = normalise(upright, settings)[1]
        photo.storage_path, photo.sha256, photo.bytes = path, digest, len(upright)
        photo.width, photo.height, photo.content_type = info.width, info.height, info.content_type
        session.add(photo)
        changed += 1
    session.flush()
    return changed


def add_stored_photo(session: Session, *, group_id: uuid.UUID | None, storage_path: str) -> Photo:
    """A photo row for a file already in the store, with nothing inspected (`reelroute replay`'s
    stand-in photo: its simulated items are never made)."""
    photo = Photo(group_id=group_id, storage_path=storage_path)
    session.add(photo)
    session.flush()
    return photo
