"""Measure CelebA preparation speed in images per second, with 1 worker and with every core, and their ratio.

Usage: python benchmarks/prepare_speed.py [--image-dir DIR --attr-file FILE] [--workers N] [--repeat R]

Without options it prepares the CelebA sample in $STARGAN_TEST_DATA/celeba-sample (default: ../shared/data
beside the checkout). Each timing covers a whole `prepare_celeba` call: parsing, decoding, cropping, writing.
The best of --repeat runs is reported, so disk-cache warm-up counts against neither setting.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stargan_core.config import CELEBA_ATTRIBUTES  # noqa: E402
from stargan_core.prepare import prepare_celeba  # noqa: E402
from stargan_core.prepare.common import default_workers  # noqa: E402


def time_preparation(image_dir: Path, attr_file: Path, test_size: int, workers: int, repeat: int) -> tuple[int, float]:
    """Return (images prepared, best wall-clock seconds over ``repeat`` runs) for one worker count."""
    best = float("inf")
    count = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="prepare-speed-") as scratch:
            start = time.perf_counter()
            manifest = prepare_celeba(
                image_dir, attr_file, Path(scratch) / "out",
                selected_attrs=CELEBA_ATTRIBUTES, test_size=test_size, workers=workers,
            )
            best = min(best, time.perf_counter() - start)
            count = manifest["counts"]["total"]
    return count, best


def main() -> int:
    sample = Path(os.environ.get("STARGAN_TEST_DATA", REPO.parent / "shared" / "data")) / "celeba-sample"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-dir", type=Path, default=sample / "images", help="folder of CelebA JPEGs")
    parser.add_argument("--attr-file", type=Path, default=sample / "list_attr_celeba.txt", help="attribute file")
    parser.add_argument("--test-size", type=int, default=100, help="test images (default: 100)")
    parser.add_argument("--workers", type=int, default=default_workers(),
                        help="worker processes of the parallel run (default: every usable core)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the fastest counts (default: 3)")
    args = parser.parse_args()
    if not args.attr_file.is_file():
        parser.error(f"{args.attr_file} not found; pass --image-dir and --attr-file, or set STARGAN_TEST_DATA")

    print(f"machine: {platform.processor() or platform.machine()}, {default_workers()} usable cores, "
          f"Python {platform.python_version()}")
    count, serial = time_preparation(args.image_dir, args.attr_file, args.test_size, 1, args.repeat)
    _, parallel = time_preparation(args.image_dir, args.attr_file, args.test_size, args.workers, args.repeat)
    print(f"images: {count}")
    print(f"1 worker:  {count / serial:8.1f} images/s ({serial:.2f} s)")
    print(f"{args.workers} workers: {count / parallel:8.1f} images/s ({parallel:.2f} s)")
    print(f"speed-up: {serial / parallel:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
