"""One way to read an image file, shared by image folders (training), `predict`, Grad-CAM and the
demo: the same file always gives the same tensor, whatever its format.

Every mode PIL decodes maps to 8-bit grayscale or RGB by one rule each:

| file                              | becomes                                                        |
|-----------------------------------|----------------------------------------------------------------|
| 8-bit grayscale / RGB             | itself                                                         |
| 1-bit (bilevel)                   | 0 and 255                                                      |
| 16-bit integer (PNG, TIFF)        | value × 255 / 65535, rounded (the full range, not stretched)   |
| 32-bit integer                    | 16-bit rule when every value is in 0..65535, else × 255 / (2^31 − 1) |
| float (TIFF)                      | 0..1 → 0..255 when every value is at most 1, else clipped to 0..255 |
| palette                           | its colours (and its transparency)                             |
| CMYK, YCbCr, LAB, HSV             | RGB by PIL's conversion                                        |
| any alpha (RGBA, LA, PA, tRNS)    | composited over white, as viewers show it                      |
| EXIF orientation                  | applied (the image as a camera or phone shows it)              |

An image already in memory (a notebook's PIL image or array) follows the same rules: a PIL image by
its mode; an array (height, width) or (height, width, channels) with 1, 3 or 4 channels, channels
last, by its dtype (uint8 as is, bool as 0 and 255, other integers and floats as the 16-bit, 32-bit
and float rows above; a fourth channel is alpha).

Then the image converts to the model's channels (RGB → gray by ITU-R 601 luma, gray → RGB by
repetition) and is resized to the model's size with PIL's antialiased bilinear filter.

Work is bounded whatever the file: only regular files are opened (a FIFO would block for ever),
images that declare more than `MAX_PIXELS` pixels are refused before decoding (decompression
bombs), and conversions run `ROWS` rows at a time in integers, so an 8192² RGBA PNG needs about
three times its uint8 size in memory, not float64 copies of it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 8192 * 8192
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
EXTENSION_NAMES = "/".join(sorted(e.lstrip(".") for e in EXTENSIONS))  # bmp/gif/..., for messages
BACKGROUND = 255  # transparent pixels are composited over white
ROWS = 256  # rows converted at a time


def image_files(folder: Path) -> list[Path]:
    """The files under `folder` (its subfolders too) with an image extension, in a stable order;
    hidden files and folders are skipped."""
    return [f for f in sorted(folder.rglob("*")) if f.suffix.lower() in EXTENSIONS and f.is_file()
            and not any(part.startswith(".") for part in f.relative_to(folder).parts)]


class ImageReadError(ValueError):
    """A file that is not a readable image (the message says why)."""


def read_image(path: Path | str | BinaryIO, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode one image file (a path, or an open binary file such as an upload) to uint8
    (height, width, channels) by the rules above."""
    h, w = size
    if isinstance(path, str | Path):
        refuse_special(Path(path))
    try:
        with Image.open(path) as im:
            if im.width * im.height > MAX_PIXELS:
                raise ImageReadError(f"declares {im.width}x{im.height} pixels, over the "
                                     f"{MAX_PIXELS:,} limit")
            im.draft(None, (w, h))  # JPEG: decode at the smallest scale still >= the target size
            im.load()
            arr = to_8bit(ImageOps.exif_transpose(im))
    except FileNotFoundError:
        raise
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError("not a format PIL can decode (PNG, JPEG, BMP, GIF, TIFF, WebP, PPM)") from None
    except MemoryError:
        raise ImageReadError("too large to decode in this machine's memory") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageReadError(str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__) from None
    return fit(arr, (h, w), channels)


def refuse_special(path: Path) -> None:
    """Only regular files are images: a FIFO or a device would block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ImageReadError(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(mode):
        raise ImageReadError("a folder, not an image file")
    if not stat.S_ISREG(mode):
        raise ImageReadError("not a regular file (a FIFO, socket or device); give an image file")


def by_rows(a: np.ndarray, convert: Callable[[np.ndarray], np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """`convert` applied ROWS rows at a time into one uint8 array of `shape` (bounded memory)."""
    out = np.empty(shape, np.uint8)
    for r in range(0, a.shape[0], ROWS):
        out[r : r + ROWS] = convert(a[r : r + ROWS])
    return out


def image_array(image: Any, size: tuple[int, int], channels: int) -> np.ndarray:
    """An image in memory (a PIL image, or an array as the module's docstring says) as `read_image`
    gives a file: uint8 (height, width, channels). ImageReadError says what does not fit."""
    if isinstance(image, Image.Image):
        try:
            return fit(to_8bit(ImageOps.exif_transpose(image)), size, channels)
        except (OSError, ValueError) as exc:
            raise ImageReadError(f"a PIL image PIL cannot convert ({exc})") from None
    a = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)  # a torch tensor too
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))) or 0 in a.shape:
        raise ImageReadError(f"an array of shape {a.shape}: give one image as (height, width) or (height, "
                             "width, channels) with 1, 3 or 4 channels last (a torch image: "
                             "tensor.permute(1, 2, 0).numpy())")
    if a.dtype != np.uint8 and a.dtype != bool and a.dtype.kind not in "iuf":
        raise ImageReadError(f"an array of dtype {a.dtype}: give integers, floats or booleans")
    if a.ndim == 3 and a.shape[2] == 4:  # colour and alpha each to 8 bits, then over white
        a = by_rows(np.dstack([array_to_8bit(a[..., :3]), array_to_8bit(a[..., 3])]), over_white,
                    a.shape[:2] + (3,))
    a = array_to_8bit(a)
    return fit(np.ascontiguousarray(a), size, channels)


def array_to_8bit(a: np.ndarray) -> np.ndarray:
    """uint8 as is, bool as 0 and 255, other integers and floats by the file rules."""
    if a.dtype == bool:
        return a.astype(np.uint8) * 255
    if a.dtype.kind in "iu" and a.dtype != np.uint8:
        return integer_to_8bit(a)
    if a.dtype.kind == "f":
        return float_to_8bit(a)
    return a


def to_8bit(im: Image.Image) -> np.ndarray:
    """uint8 (H, W) grayscale or (H, W, 3) RGB, alpha composited over white."""
    mode = im.mode
    if mode == "1":
        return np.asarray(im.convert("L"), dtype=np.uint8)
    if mode.startswith("I"):
        return integer_to_8bit(np.asarray(im))
    if mode == "F":
        return float_to_8bit(np.asarray(im))
    if mode in ("P", "PA", "RGBa", "La") or "transparency" in im.info:
        im = im.convert("LA" if mode in ("L", "La") else "RGBA")
        mode = im.mode
    if mode in ("RGBA", "LA"):
        a = np.asarray(im)
        out = by_rows(a, over_white, a.shape[:2] + (a.shape[2] - 1,))
        return out[..., 0] if mode == "LA" else out
    if mode == "L":
        return np.asarray(im, dtype=np.uint8)
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def over_white(rows: np.ndarray) -> np.ndarray:
    """uint8 colour + alpha composited over white, rounded to nearest, in uint16 (exact:
    colour·α + 255·(255 − α) ≤ 255², and a quotient by 255 of an integer never ends in .5)."""
    colour, alpha = rows[..., :-1].astype(np.uint16), rows[..., -1:].astype(np.uint16)
    mixed = colour * alpha + BACKGROUND * (255 - alpha) + 127
    return (mixed // 255).astype(np.uint8)


def integer_to_8bit(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:  # (H, W, C) integer colour (rare): treat each channel alike
        a = a[..., :3]
    top = 65535 if a.size == 0 or (a.min() >= 0 and a.max() <= 65535) else 2**31 - 1
    return by_rows(a, lambda r: (np.clip(r.astype(np.int64), 0, top) * 255 + top // 2) // top, a.shape)


def float_to_8bit(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)  # float32, as PIL's "F" mode
    scale = 255.0 if a.size and a.max() <= 1.0 else 1.0
    return by_rows(a, lambda r: np.round(np.clip(r.astype(np.float64) * scale, 0, 255)), a.shape)


def fit(arr: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """Convert uint8 gray/RGB to `channels` and resize to `size` (height, width)."""
    im = Image.fromarray(arr, "L" if arr.ndim == 2 else "RGB")
    im = im.convert("L" if channels == 1 else "RGB")
    h, w = size
    if im.size != (w, h):
        im = im.resize((w, h), Image.Resampling.BILINEAR)
    out = np.asarray(im, dtype=np.uint8)
    return out[..., None] if channels == 1 else out
