"""Avatar images with Pillow: only real PNG, JPEG, GIF or WebP images, checked before they are
decoded, re-encoded as a square PNG that keeps none of the upload's metadata."""

from __future__ import annotations

import asyncio
import io
import warnings

from PIL import Image, ImageOps

from users.domain.avatars import ACCEPTED_NAMES, AvatarRejected, AvatarTooLarge, sniff_format
from users.service_layer.ports import ProcessedImage

OUTPUT_MEDIA_TYPE = "image/png"


class PillowAvatarProcessor:
    def __init__(self, *, max_bytes: int, max_pixels: int, size: int) -> None:
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._size = size

    async def normalise(self, data: bytes) -> ProcessedImage:
        return await asyncio.to_thread(self.normalise_now, data)

    def normalise_now(self, data: bytes) -> ProcessedImage:
        if len(data) > self._max_bytes:
            raise AvatarTooLarge(f"larger than {self._max_bytes} bytes")
        image_format = sniff_format(data)
        if image_format is None:
            raise AvatarRejected(f"not a {ACCEPTED_NAMES} image", unsupported_type=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                self._check_header(data, image_format)
                with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                    image.load()  # a truncated file fails here
                    return ProcessedImage(self._encode(image), OUTPUT_MEDIA_TYPE)
        except AvatarRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise AvatarRejected("too many pixels (a decompression bomb?)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise AvatarRejected(f"not a valid, complete {image_format} image: {error}") from None

    def _check_header(self, data: bytes, image_format: str) -> None:
        """Size from the header alone, before anything is decoded; then the file's structure."""
        with Image.open(io.BytesIO(data), formats=[image_format]) as probe:
            width, height = probe.size
            if width < 1 or height < 1 or width * height > self._max_pixels:
                raise AvatarRejected(
                    f"{width}x{height} pixels is more than the {self._max_pixels} allowed"
                )
            probe.verify()

    def _encode(self, image: Image.Image) -> bytes:
        upright = ImageOps.exif_transpose(image) or image  # photos keep their orientation
        rgba = upright.convert("RGBA")
        side = min(rgba.size)
        left, top = (rgba.width - side) // 2, (rgba.height - side) // 2
        square = rgba.crop((left, top, left + side, top + side))
        target = min(side, self._size)
        if target != side:
            square = square.resize((target, target), Image.Resampling.LANCZOS)
        clean = Image.new("RGBA", square.size)  # a fresh image carries no metadata over
        clean.paste(square)
        output = io.BytesIO()
        clean.save(output, format="PNG", optimize=True)
        return output.getvalue()
