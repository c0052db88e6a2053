"""Avatar uploads through Pillow: real images re-encoded square and clean, everything else
refused with a reason, before any large decoding happens."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from typing import Any

import pytest
from PIL import Image, ImageFile

from tests.support import images
from users.adapters.images import PillowAvatarProcessor
from users.domain.avatars import AvatarRejected, AvatarTooLarge
from users.settings import UsersSettings

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


# What one upload may cost (issue 10 §3): a few KB of PNG must not become hundreds of MB.

DEFAULTS = {
    name: UsersSettings.model_fields[field].default
    for name, field in [
        ("max_bytes", "avatar_max_bytes"),
        ("max_pixels", "avatar_max_pixels"),
        ("size", "avatar_size"),
        ("max_concurrent", "avatar_max_concurrent_decodes"),
    ]
}


class LoadSpy:
    """Records every decode (``ImageFile.load``) with the size it decodes at."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sizes: list[tuple[int, int]] = []
        real_load = ImageFile.ImageFile.load

        def load(image: ImageFile.ImageFile) -> Any:
            self.sizes.append(image.size)
            return real_load(image)

        monkeypatch.setattr(ImageFile.ImageFile, "load", load)


async def test_a_tiny_png_of_25_megapixels_is_refused_from_its_header_without_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = images.one_bit_png(5000, 5000)
    assert len(bomb) < 10_000  # well under the byte limit: only the pixels can refuse it
    decodes = LoadSpy(monkeypatch)
    with pytest.raises(AvatarRejected, match="5000x5000 pixels is more than") as refused:
        await PillowAvatarProcessor(**DEFAULTS).normalise(bomb)
    assert not refused.value.unsupported_type
    assert decodes.sizes == []


async def test_a_large_allowed_jpeg_is_decoded_at_a_reduced_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    photo = images.real_image("JPEG", size=(2000, 2000))
    decodes = LoadSpy(monkeypatch)
    processed = await PillowAvatarProcessor(**DEFAULTS).normalise(photo)
    # draft: 1/4, the smallest scale still covering 256 (later loads are no-ops)
    assert set(decodes.sizes) == {(500, 500)}
    with Image.open(io.BytesIO(processed.content)) as result:
        assert result.size == (256, 256)


async def test_a_one_bit_image_is_never_converted_to_rgba_at_full_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conversions: list[tuple[str, str, tuple[int, int]]] = []
    real_convert = Image.Image.convert

    def convert(image: Image.Image, mode: str | None = None, *args: Any, **kwargs: Any) -> Any:
        conversions.append((image.mode, str(mode), image.size))
        return real_convert(image, mode, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "convert", convert)
    processed = await PillowAvatarProcessor(**DEFAULTS).normalise(images.one_bit_png(2000, 2000))
    assert processed.media_type == "image/png"
    full_size = [c for c in conversions if c[2] == (2000, 2000)]
    assert full_size == [("1", "L", (2000, 2000))]  # 1 byte a pixel, as Pillow stores "1"


async def test_no_more_decodes_than_the_setting_run_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running, most = 0, 0
    lock = threading.Lock()
    real_load = ImageFile.ImageFile.load

    def slow_load(image: ImageFile.ImageFile) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)  # a decode that takes time, so that the eight overlap if allowed
            return real_load(image)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(ImageFile.ImageFile, "load", slow_load)
    processor = PillowAvatarProcessor(**{**DEFAULTS, "max_concurrent": 2})
    upload = images.real_image("PNG", size=(300, 300))
    results = await asyncio.gather(*(processor.normalise(upload) for _ in range(8)))
    assert len(results) == 8
    assert most == 2


async def test_decoding_does_not_block_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    release = threading.Event()
    real_load = ImageFile.ImageFile.load

    def held_load(image: ImageFile.ImageFile) -> Any:
        started.set()
        release.wait(5)
        return real_load(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", held_load)
    decode = asyncio.ensure_future(
        PillowAvatarProcessor(**DEFAULTS).normalise(images.real_image("PNG"))
    )
    # The loop keeps serving other work while the decode is held in its thread.
    assert await asyncio.to_thread(started.wait, 5)
    assert not decode.done()
    release.set()
    assert (await decode).media_type == "image/png"
