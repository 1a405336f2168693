"""Image I/O: any file a user has to RGB, crops, resizing, and tensors to lossless 8-bit PNG."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from stargan_core.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def is_image_file(path: Path) -> bool:
    """Return True for a visible file with a known image suffix (hidden files such as ._x.jpg are skipped)."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Convert any Pillow mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) to 8-bit RGB.

    Transparent areas are composited on ``background``; 16-bit and 32-bit grey images are scaled to 0-255.
    """
    mode = image.mode
    if mode == "RGB":
        return image
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, background + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        if mode == "F":
            top = max(float(array.max()), 1.0) if array.max() > 1.0 else 1.0
        grey = np.clip(np.rint(array / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return image.convert("RGB")


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file, apply its EXIF orientation and return it fully decoded as RGB.

    Raises DataError naming the file when it is empty, unreadable or truncated.
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"{path}: empty file")
        with Image.open(path) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except DataError:
        raise
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc


def center_crop_box(width: int, height: int, crop_size: int) -> tuple[int, int, int, int]:
    """Return the (left, top, right, bottom) box of a centred square crop, clipped to the image's short side.

    Uses the same rounding as torchvision.transforms.CenterCrop, so a 178x218 CelebA image gives rows 20..197.
    """
    size = min(crop_size, width, height)
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def center_crop_resize(image: Image.Image, crop_size: int, image_size: int) -> Image.Image:
    """Centre-crop a square of ``crop_size`` (at most the short side), then resize to ``image_size``.

    Resizing is Pillow's antialiased bilinear filter, the default of torchvision.transforms.Resize that the
    official StarGAN release applies to PIL images.
    """
    box = center_crop_box(image.width, image.height, crop_size)
    cropped = image.crop(box)
    if cropped.size != (image_size, image_size):
        cropped = cropped.resize((image_size, image_size), Image.BILINEAR)
    return cropped


def to_uint8_hwc(image: Image.Image) -> np.ndarray:
    """Return an RGB image as a uint8 array of shape (H, W, 3)."""
    return np.asarray(to_rgb(image), dtype=np.uint8)


def uint8_to_tensor(images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Convert uint8 images (N, H, W, 3) to float tensors (N, 3, H, W) in [-1, 1] on ``device``."""
    batch = torch.as_tensor(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    batch = batch.to(device, non_blocking=True)
    return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def tensor_to_uint8(x: torch.Tensor) -> np.ndarray:
    """Convert images in [-1, 1], shape (N, 3, H, W) or (3, H, W), to uint8 (…, H, W, 3), clamping first."""
    x = x.detach().float().clamp(-1.0, 1.0)
    x = ((x + 1.0) * 127.5).round().to(torch.uint8).cpu()
    return x.movedim(-3, -1).numpy()


def save_png(array: np.ndarray, path: str | Path) -> Path:
    """Write a uint8 (H, W, 3) array as a lossless PNG, atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            Image.fromarray(array, mode="RGB").save(handle, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def decode_rgb(data: bytes, source: str | Path = "<bytes>") -> Image.Image:
    """Decode an encoded image held in memory like ``load_rgb``: EXIF orientation applied, fully decoded, RGB.

    Raises DataError naming ``source`` when the data is empty, unreadable or truncated.
    """
    if not data:
        raise DataError(f"{source}: empty file")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            return to_rgb(image)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise DataError(f"{source}: cannot read image ({exc})") from exc


def crop_resize(image: Image.Image, box: tuple[int, int, int, int], size: int) -> Image.Image:
    """Crop the square ``box`` (left, top, right, bottom) and resize it to ``size`` with the filter of ``center_crop_resize``."""
    cropped = image.crop(box)
    if cropped.size != (size, size):
        cropped = cropped.resize((size, size), Image.BILINEAR)
    return cropped
