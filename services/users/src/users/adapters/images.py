"""Avatar images with Pillow: only real PNG, JPEG, GIF or WebP images, checked before they are
decoded, re-encoded as a square PNG that keeps none of the upload's metadata.

What an upload may cost is bounded before anything is decoded. The bytes are capped
(``max_bytes``), but a few KB of PNG can claim millions of pixels (a 3 KB 5000x5000 1-bit PNG
cost 350 MB here when decoded and converted to RGBA at full size), so the header's dimensions
are checked first (``Image.open`` reads only the header) against ``max_pixels``. Measured, the
worst case is about 11 bytes a pixel (a palette PNG: the palette, its RGBA conversion, and the
premultiplied copy Pillow scales) and a progressive JPEG buffers its whole coefficients, 6 to 8
bytes a pixel, whatever the scale it is decoded at; hence one cap for all formats, a few
megapixels (settings: 4,000,000, about 45 MB a decode), plenty for a 256-pixel square.
A JPEG is still decoded at a reduced scale (``Image.draft``: 1/2, 1/4 or 1/8, still at least
``size`` square). The decoded image is cut and scaled down in its own mode, never converted to
RGBA at full size, and at most ``max_concurrent`` decodes run at once, each in a thread of this
adapter's own pool, so that the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import io
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from PIL import Image, ImageFile

from users.domain.avatars import (
    ACCEPTED_NAMES,
    AvatarRejected,
    AvatarTooLarge,
    AvatarTypeUnsupported,
    sniff_format,
)
from users.service_layer.ports import ProcessedImage

OUTPUT_MEDIA_TYPE = "image/png"
# Modes that are scaled as they are; any other is converted first (1-bit to L, at 1 byte a
# pixel as Pillow already stores it; palettes, CMYK, 16-bit and the rest to RGBA).
SCALED_AS_IS = frozenset({"L", "LA", "RGB", "RGBA"})
# The EXIF orientation tag and what makes a photo upright (as ImageOps.exif_transpose does).
ORIENTATION = 0x0112
UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class PillowAvatarProcessor:
    def __init__(
        self,
        *,
        max_bytes: int,
        max_pixels: int,
        size: int,
        max_concurrent: int = 2,
    ) -> None:
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._size = size
        # The pool is the limit: a decode whose request is cancelled keeps its thread until it
        # ends, so cancelling requests cannot start more decodes than this at once.
        self._decoders = ThreadPoolExecutor(
            max_workers=max_concurrent, thread_name_prefix="avatar-decode"
        )

    async def normalise(self, data: bytes) -> ProcessedImage:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._decoders, self.normalise_now, data)

    def normalise_now(self, data: bytes) -> ProcessedImage:
        if len(data) > self._max_bytes:
            raise AvatarTooLarge(f"larger than {self._max_bytes} bytes")
        image_format = sniff_format(data)
        if image_format is None:
            raise AvatarTypeUnsupported(f"not a {ACCEPTED_NAMES} image")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                self._check_header(data, image_format)
                with Image.open(io.BytesIO(data), formats=[image_format]) as image:
                    self._reduce(image)
                    image.load()  # a truncated file fails here
                    return ProcessedImage(self._encode(image), OUTPUT_MEDIA_TYPE)
        except AvatarRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise AvatarRejected("too many pixels (a decompression bomb?)") from None
        except (OSError, SyntaxError, ValueError, EOFError) as error:
            raise AvatarRejected(f"not a valid, complete {image_format} image: {error}") from None
        finally:
            release_freed_memory()

    def _check_header(self, data: bytes, image_format: str) -> None:
        """Size from the header alone, before anything is decoded; then the file's structure."""
        with Image.open(io.BytesIO(data), formats=[image_format]) as probe:
            width, height = probe.size
            if width < 1 or height < 1 or width * height > self._max_pixels:
                raise AvatarRejected(
                    f"{width}x{height} pixels is more than the {self._max_pixels} allowed"
                )
            probe.verify()

    def _reduce(self, image: ImageFile.ImageFile) -> None:
        """Before decoding: the size again (this is what ``load`` will decode), and for a JPEG
        the smallest scale that still covers the output."""
        width, height = image.size
        if width < 1 or height < 1 or width * height > self._max_pixels:
            raise AvatarRejected(
                f"{width}x{height} pixels is more than the {self._max_pixels} allowed"
            )
        if image.format == "JPEG":
            image.draft(None, (self._size, self._size))

    def _encode(self, image: Image.Image) -> bytes:
        orientation = image.getexif().get(ORIENTATION)
        if image.mode not in SCALED_AS_IS:
            image = image.convert("L" if image.mode == "1" else "RGBA")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        target = min(side, self._size)
        # Cut the centre square and scale it down in one step, without a full-size copy.
        square = image.resize(
            (target, target),
            Image.Resampling.LANCZOS,
            box=(left, top, left + side, top + side),
            reducing_gap=3.0,
        )
        if orientation in UPRIGHT:  # photos keep their orientation
            square = square.transpose(UPRIGHT[orientation])
        clean = Image.new("RGBA", square.size)  # a fresh image carries no metadata over
        clean.paste(square.convert("RGBA"))
        output = io.BytesIO()
        clean.save(output, format="PNG", optimize=True)
        return output.getvalue()


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError, TypeError):  # not glibc, or no C library found
        return None
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the decoded pixels, now freed, back to the system. glibc keeps freed memory of
    worker threads in their arenas for reuse, so without this the process stays at its peak."""
    if _TRIM is not None:
        _TRIM(0)
