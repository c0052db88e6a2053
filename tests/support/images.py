"""Images for avatar tests, made on the fly: real ones of each type, and each kind of fake."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def real_image(image_format: str, size: tuple[int, int] = (300, 200), **save: object) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    output = io.BytesIO()
    image.save(output, format=image_format, **save)
    return output.getvalue()


def jpeg_with_metadata() -> bytes:
    image = Image.new("RGB", (120, 80), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "SecretCam"  # Make
    exif[0x9286] = "where I live"  # UserComment
    output = io.BytesIO()
    image.save(output, format="JPEG", exif=exif.tobytes(), comment=b"private comment")
    return output.getvalue()


def truncated(image_format: str = "PNG") -> bytes:
    whole = real_image(image_format, size=(400, 400))
    return whole[: len(whole) // 2]


def decompression_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG whose header claims billions of pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = zlib.compress(b"\x00" * (width + 1) * 16)  # a few rows; the rest is missing anyway
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def one_bit_png(width: int = 5000, height: int = 5000) -> bytes:
    """A real, valid PNG of one colour, 1 bit a pixel: 5000x5000 is 25 megapixels in ~3 KB,
    and cost hundreds of MB once decoded and converted to RGBA at full size."""
    output = io.BytesIO()
    Image.new("1", (width, height)).save(output, format="PNG", optimize=True)
    return output.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
# An HTML page that starts like a GIF: the signature passes, decoding must not.
POLYGLOT = b"GIF89a<html><script>alert(1)</script></html>"
