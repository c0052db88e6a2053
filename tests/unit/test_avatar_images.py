"""Avatar uploads through Pillow: real images re-encoded square and clean, everything else
refused with a reason, before any large decoding happens."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.support import images
from users.adapters.images import PillowAvatarProcessor
from users.domain.avatars import AvatarRejected, AvatarTooLarge

PROCESSOR = PillowAvatarProcessor(max_bytes=1_000_000, max_pixels=4_000_000, size=128)


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF", "WEBP"])
async def test_each_accepted_type_becomes_a_square_png(image_format: str) -> None:
    processed = await PROCESSOR.normalise(images.real_image(image_format))
    assert processed.media_type == "image/png"
    with Image.open(io.BytesIO(processed.content)) as result:
        assert (result.format, result.size) == ("PNG", (128, 128))


async def test_small_images_are_not_enlarged() -> None:
    processed = await PROCESSOR.normalise(images.real_image("PNG", size=(40, 60)))
    with Image.open(io.BytesIO(processed.content)) as result:
        assert result.size == (40, 40)


async def test_metadata_is_stripped() -> None:
    upload = images.jpeg_with_metadata()
    assert b"SecretCam" in upload
    processed = await PROCESSOR.normalise(upload)
    assert b"SecretCam" not in processed.content
    assert b"private comment" not in processed.content
    with Image.open(io.BytesIO(processed.content)) as result:
        assert not result.getexif()
        assert set(result.info) <= {"dpi", "gamma"}


@pytest.mark.parametrize(
    "upload", [images.SVG, images.HTML, b"", b"plain text"], ids=["svg", "html", "empty", "text"]
)
async def test_other_types_are_unsupported(upload: bytes) -> None:
    with pytest.raises(AvatarRejected) as refused:
        await PROCESSOR.normalise(upload)
    assert refused.value.unsupported_type


@pytest.mark.parametrize(
    "upload",
    [
        images.truncated("PNG"),
        images.truncated("JPEG"),
        images.POLYGLOT,
        images.decompression_bomb(),
    ],
    ids=["truncated-png", "truncated-jpeg", "polyglot", "bomb"],
)
async def test_broken_or_hostile_images_are_refused(upload: bytes) -> None:
    with pytest.raises(AvatarRejected) as refused:
        await PROCESSOR.normalise(upload)
    assert not refused.value.unsupported_type
    assert str(refused.value)


async def test_more_pixels_than_the_setting_are_refused_from_the_header_alone() -> None:
    # Below Pillow's own bomb guard, above ours.
    with pytest.raises(AvatarRejected, match="3000x3000 pixels"):
        await PROCESSOR.normalise(images.decompression_bomb(3000, 3000))


async def test_too_many_bytes_are_refused() -> None:
    small = PillowAvatarProcessor(max_bytes=1000, max_pixels=4_000_000, size=128)
    with pytest.raises(AvatarTooLarge):
        await small.normalise(images.real_image("PNG", size=(600, 600), compress_level=0))
