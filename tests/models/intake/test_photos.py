"""Photo storage: content-addressed, validated, and nothing written for a bad upload."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
import sqlalchemy as sa
from PIL import Image

from reelroute.models.core.errors import InvalidInput, NotFound
from reelroute.models.intake.photos import inspect_image, normalise, store_photo
from reelroute.models.items.groups import create_group
from reelroute.models.store.files import Storage, video_path
from tests.models.helpers import image_bytes


@pytest.fixture(params=["local", "s3"])
def storage(request, settings) -> Storage:
    """A local folder, and an S3 bucket through s3fs (moto's server on loopback)."""
    if request.param == "s3":
        return Storage(request.getfixturevalue("s3_url"))
    return Storage(settings.store.storage_url)


def photo_rows(session) -> int:
    return session.execute(sa.text("SELECT count(*) FROM photos")).scalar_one()


def test_store_photo_is_content_addressed_and_deduplicated(session, settings, storage):
    group = create_group(session, name="g")
    data = image_bytes(80, 60, "JPEG")
    photo = store_photo(
        session,
        storage=storage,
        group_id=group.id,
        data=data,
        filename="../../etc/passwd.jpg",
        settings=settings,
    )
    again = store_photo(
        session,
        storage=storage,
        group_id=group.id,
        data=data,
        filename="other.jpg",
        settings=settings,
    )
    session.commit()
    assert again.id == photo.id
    assert photo.storage_path == f"photos/{photo.sha256}"
    assert (photo.width, photo.height, photo.content_type) == (80, 60, "image/jpeg")
    assert photo.original_filename == "../../etc/passwd.jpg"  # kept as text, never a path
    assert storage.read(photo.storage_path) == normalise(data, settings)[0]  # the stored copy
    other = create_group(session, name="other")
    copy = store_photo(
        session, storage=storage, group_id=other.id, data=data, filename="x.jpg", settings=settings
    )
    assert copy.id != photo.id and copy.storage_path == photo.storage_path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"%PDF-1.4 not an image", "is not a readable image; upload a JPEG, PNG, WebP or HEIC"),
        (b"", "is not a readable image"),
        (image_bytes(64, 64, "PNG")[:60], "is not a readable image"),
        (image_bytes(64, 64, "GIF"), "GIF format is not accepted"),
        (image_bytes(8, 8, "PNG"), "8x8 is too small"),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_written(session, settings, storage, data, message):
    group = create_group(session, name="g")
    session.commit()
    with pytest.raises(InvalidInput, match=message):
        store_photo(
            session, storage=storage, group_id=group.id, data=data, filename="f", settings=settings
        )
    session.rollback()
    assert photo_rows(session) == 0
    assert not storage.exists("photos")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size: the classic decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_decompression_bombs_and_oversized_files_are_refused(settings):
    with pytest.raises(InvalidInput, match="over the limit of 50000000"):
        inspect_image(png_header_only(30_000, 30_000), settings)
    small = settings.replaced(max_upload_bytes=2048)
    with pytest.raises(InvalidInput, match="REELROUTE_MAX_UPLOAD_BYTES"):
        inspect_image(image_bytes(200, 200, "PNG") + b"\0" * 4096, small)


def test_unknown_group_is_refused(session, settings, storage):
    import uuid

    with pytest.raises(NotFound):
        store_photo(
            session,
            storage=storage,
            group_id=uuid.uuid4(),
            data=image_bytes(),
            filename="f.png",
            settings=settings,
        )


def test_storage_paths_and_missing_files(storage):
    import uuid

    item, group = uuid.uuid4(), uuid.uuid4()
    assert video_path(group, item) == f"videos/{group}/{item}.mp4"
    storage.write(video_path(group, item), b"mp4")
    assert storage.read(video_path(group, item)) == b"mp4"
    local = storage.local_path(video_path(group, item))
    assert local is None if storage.url.startswith("s3://") else local.endswith(f"{item}.mp4")
    storage.move(video_path(group, item), f"videos/{group}/moved.mp4")
    storage.move(video_path(group, item), f"videos/{group}/moved.mp4")  # done already: no-op
    assert not storage.exists(video_path(group, item))
    assert storage.read(f"videos/{group}/moved.mp4") == b"mp4"
    storage.delete(f"videos/{group}/moved.mp4")
    assert not storage.exists(f"videos/{group}/moved.mp4")
    with pytest.raises(NotFound):
        storage.read("videos/none.mp4")


def test_webp_is_accepted(settings):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buffer, format="WEBP")
    assert inspect_image(buffer.getvalue(), settings).content_type == "image/webp"
