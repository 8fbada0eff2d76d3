"""Photos as people send them (a corpus of the tests' own making): phone photos with every EXIF
orientation, GPS and maker notes, CMYK, 16-bit, alpha, palette, HEIC, WebP, animated, 48 MP.
Each goes through intake into the store: the stored copy is upright, 8-bit sRGB RGB, within
the size limit, and holds no metadata (a marker of ours put in every field is looked for in
its bytes); what Runway is asked for (ratio, image) follows the upright photo."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image, ImageCms

from reelroute.models.core.errors import InvalidInput
from reelroute.models.core.tables import Photo
from reelroute.models.intake.photos import normalise, store_photo, upright_bytes
from reelroute.models.items.groups import create_group
from reelroute.models.store.files import Storage

MARKER = b"RR-METADATA-MARKER-7f3a"
QUADRANTS = {  # the upright picture: a colour in each corner
    "top_left": (230, 30, 30),
    "top_right": (30, 200, 30),
    "bottom_left": (30, 30, 230),
    "bottom_right": (240, 240, 240),
}
# ImageOps.exif_transpose's method per orientation, and the one that undoes it (how a phone's
# raw pixels are made from the upright picture).
UNDO = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright(width: int, height: int) -> Image.Image:
    picture = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    for (x, y), colour in zip(
        [(0, 0), (half_w, 0), (0, half_h), (half_w, half_h)], QUADRANTS.values(), strict=True
    ):
        picture.paste(colour, (x, y, x + half_w, y + half_h))
    return picture


def phone_photo(orientation: int, width: int = 96, height: int = 64) -> bytes:
    """A phone's JPEG of an upright `width`x`height` picture: raw pixels, the Orientation tag,
    GPS, a maker note, the camera's serial and owner, XMP and a comment, each with the marker."""
    undo = UNDO[orientation]
    raw = upright(width, height) if undo is None else upright(width, height).transpose(undo)
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker " + MARKER.decode()  # make
    exif[0x013B] = "Owner " + MARKER.decode()  # artist
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 12.0), 3: "W", 4: (122.0, 5.0, 30.0)}
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0x927C] = MARKER * 4  # maker note
    exif_ifd[0xA431] = "SERIAL-" + MARKER.decode()  # body serial number
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + MARKER + b"</rdf:RDF></x:xmpmeta>"
    buffer = io.BytesIO()
    raw.save(buffer, "JPEG", quality=95, exif=exif, xmp=xmp, comment=MARKER)
    data = buffer.getvalue()
    assert MARKER in data  # the marker really is in the upload
    return data


def saved(picture: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, fmt, **options)
    return buffer.getvalue()


def corner(picture: Image.Image, where: str) -> tuple[int, ...]:
    x = picture.width // 4 if "left" in where else picture.width * 3 // 4
    y = picture.height // 4 if "top" in where else picture.height * 3 // 4
    return picture.getpixel((x, y))  # type: ignore[return-value]


def assert_upright(data: bytes, width: int, height: int) -> None:
    with Image.open(io.BytesIO(data)) as picture:
        assert (picture.format, picture.mode, picture.size) == ("JPEG", "RGB", (width, height))
        for where, colour in QUADRANTS.items():
            got = corner(picture, where)
            assert all(abs(a - b) < 40 for a, b in zip(got, colour, strict=True)), (where, got)
        assert not picture.info.get("exif") and not picture.info.get("icc_profile")
        assert not picture.info.get("xmp") and not picture.info.get("comment")
    assert MARKER not in data and b"Exif" not in data and b"GPS" not in data


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("shape", ["landscape", "portrait"])
def test_a_phone_photo_is_stored_upright_without_its_metadata(
    session, settings, orientation, shape
):
    width, height = (96, 64) if shape == "landscape" else (64, 96)
    group = create_group(session, name="phones")
    storage = Storage(settings.store.storage_url)
    photo = store_photo(
        session, storage=storage, group_id=group.id, data=phone_photo(orientation, width, height),
        filename="IMG_0001.JPG", settings=settings,
    )  # fmt: skip
    session.commit()
    assert (photo.width, photo.height, photo.content_type) == (width, height, "image/jpeg")
    stored = storage.read(photo.storage_path)
    assert_upright(stored, width, height)
    assert upright_bytes(stored, settings.api.photo_max_side) is stored  # already normalised


def cmyk_with_profile() -> bytes:
    picture = upright(96, 64).convert("CMYK")
    return saved(picture, "JPEG", quality=95)


def sixteen_bit_png() -> bytes:
    grey = upright(96, 64).convert("L")
    wide = grey.point(lambda v: v * 256, mode="I").convert("I;16")
    return saved(wide, "PNG")


def alpha_png() -> bytes:
    picture = upright(96, 64).convert("RGBA")
    picture.putpixel((0, 0), (0, 0, 0, 0))  # one transparent pixel: flattened onto white
    return saved(picture, "PNG")


def palette_png() -> bytes:
    return saved(upright(96, 64).convert("P", palette=Image.Palette.ADAPTIVE, colors=8), "PNG")


def srgb_with_icc() -> bytes:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return saved(upright(96, 64), "PNG", icc_profile=profile)


def heic() -> bytes:
    from pillow_heif import register_heif_opener

    register_heif_opener()
    return saved(upright(96, 64), "HEIF", quality=95)


def webp() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 1
    exif[0x013B] = MARKER.decode()
    return saved(upright(96, 64), "WEBP", quality=95, exif=exif)


KINDS: dict[str, Callable[[], bytes]] = {
    "cmyk": cmyk_with_profile,
    "16-bit png": sixteen_bit_png,
    "alpha png": alpha_png,
    "palette png": palette_png,
    "png with an icc profile": srgb_with_icc,
    "heic": heic,
    "webp with exif": webp,
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_of_image_is_stored_as_8_bit_srgb_without_metadata(session, settings, kind):
    group = create_group(session, name="kinds")
    storage = Storage(settings.store.storage_url)
    photo = store_photo(
        session, storage=storage, group_id=group.id, data=KINDS[kind](), filename=f"{kind}.x",
        settings=settings,
    )  # fmt: skip
    session.commit()
    stored = storage.read(photo.storage_path)
    if kind == "16-bit png":  # grey: the corners keep their brightness order
        with Image.open(io.BytesIO(stored)) as picture:
            assert picture.mode == "RGB" and picture.size == (96, 64)
            assert corner(picture, "bottom_right")[0] > corner(picture, "bottom_left")[0]
        return
    assert_upright(stored, 96, 64)


def test_an_animated_image_is_refused_saying_why(settings):
    frames = [upright(64, 48), upright(64, 48).transpose(Image.Transpose.ROTATE_180)]
    animated = saved(frames[0], "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(InvalidInput, match="an animated image \\(2 frames\\); send one still"):
        normalise(animated, settings)


def test_a_48_megapixel_photo_is_stored_at_the_providers_size(session, settings):
    data = saved(upright(8000, 6000), "JPEG", quality=80)
    group = create_group(session, name="big")
    photo = store_photo(
        session, storage=Storage(settings.store.storage_url), group_id=group.id, data=data,
        filename="48mp.jpg", settings=settings,
    )  # fmt: skip
    assert (photo.width, photo.height) == (2048, 1536)


def test_a_photo_stored_before_normalisation_is_normalised_on_its_next_use(settings):
    old = phone_photo(6, 64, 96)  # as an older reelroute stored it: raw pixels, EXIF and all
    assert_upright(upright_bytes(old, settings.api.photo_max_side), 64, 96)


def test_runway_is_asked_for_a_portrait_video_of_a_portrait_phone_photo(session, settings):
    from reelroute.models.core.enums import InferenceProvider
    from reelroute.providers.base import GenerationRequest
    from reelroute.providers.runway import RunwayProvider

    group = create_group(session, name="runway")
    storage = Storage(settings.store.storage_url)
    photo: Photo = store_photo(
        session, storage=storage, group_id=group.id, data=phone_photo(6, 360, 640),
        filename="portrait.jpg", settings=settings,
    )  # fmt: skip
    image = upright_bytes(storage.read(photo.storage_path), settings.api.photo_max_side)
    request = GenerationRequest(
        item_id=photo.id, provider=InferenceProvider.runway_gen4_turbo, image=image,
        prompt="a slow pan", duration_s=5, frame_num=None, seed=None, provider_task_id=None,
    )  # fmt: skip
    body = RunwayProvider.request_body(RunwayProvider.__new__(RunwayProvider), request)
    assert body["ratio"] == "720:1280"
    import base64

    sent = base64.b64decode(body["prompt_image"].split(",", 1)[1])
    assert_upright(sent, 360, 640)


@pytest.mark.parametrize("keep", [False, True])
def test_the_original_is_kept_only_if_the_group_asks(session, settings, keep):
    group = create_group(session, name=f"originals {keep}", keep_original_photos=keep)
    storage = Storage(settings.store.storage_url)
    upload = phone_photo(6, 64, 96)
    photo = store_photo(
        session, storage=storage, group_id=group.id, data=upload, filename="IMG.JPG",
        settings=settings,
    )  # fmt: skip
    session.commit()
    assert_upright(storage.read(photo.storage_path), 64, 96)  # what every provider receives
    if not keep:
        assert photo.original_path is None
        return
    assert photo.original_path is not None and photo.original_path != photo.storage_path
    assert storage.read(photo.original_path) == upload  # as uploaded, metadata and all


def test_photos_stored_before_normalisation_are_normalised_once(session, settings):
    """A photo stored by an older reelroute (raw pixels, EXIF and GPS) is normalised in place by
    `reelroute normalise-photos`; a second run changes nothing."""
    from reelroute.models.intake.photos import normalise_stored, sha256_of
    from reelroute.models.store.files import photo_path

    group = create_group(session, name="old photos")
    storage = Storage(settings.store.storage_url)
    old = phone_photo(6, 64, 96)
    path = photo_path(sha256_of(old))
    storage.write(path, old)
    photo = Photo(
        group_id=group.id, storage_path=path, original_filename="IMG.JPG",
        content_type="image/jpeg", width=96, height=64, bytes=len(old), sha256=sha256_of(old),
    )  # fmt: skip
    session.add(photo)
    session.commit()
    assert normalise_stored(session, storage, settings) == 1
    session.commit()
    session.refresh(photo)
    assert (photo.width, photo.height) == (64, 96) and photo.storage_path != path
    assert_upright(storage.read(photo.storage_path), 64, 96)
    assert normalise_stored(session, storage, settings) == 0
