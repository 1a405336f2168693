"""`stargan check-data`: confirm that the raw datasets the pipeline reads exist, before any work starts."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from components.common import add_params_arguments, load_params

HELP_CELEBA = (
    "CelebA: run `stargan download celeba --out data/raw` (about 1.4 GB), or put the aligned images "
    "(img_align_celeba) in {images} and list_attr_celeba.txt at {attr}"
)
HELP_RAFD = (
    "RaFD: request it at https://rafd.socsci.ru.nl/ (free for research after registration; `stargan download rafd` "
    "explains the layout) and unpack the photos into {rafd}"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check-data", help="check that the raw datasets named in params.yaml exist", description=__doc__,
    )
    add_params_arguments(parser)
    parser.add_argument("--datasets", default="celeba,rafd",
                        help="comma-separated datasets to check: celeba, rafd (default: both)")
    parser.set_defaults(handler=run)


def missing_inputs(cfg, datasets: list[str]) -> list[str]:
    """Return one line per missing raw input, each saying where to put it and how to get it."""
    d = cfg.data
    problems = []
    if "celeba" in datasets:
        images, attr = Path(d.celeba_image_dir), Path(d.celeba_attr_file)
        if not images.is_dir() or not any(images.iterdir()) or not attr.is_file():
            what = [str(p) for p, ok in ((images, images.is_dir()), (attr, attr.is_file())) if not ok] or [str(images)]
            problems.append(f"missing {', '.join(what)}. " + HELP_CELEBA.format(images=images, attr=attr))
    if "rafd" in datasets:
        rafd = Path(d.rafd_image_dir)
        if not rafd.is_dir() or not any(rafd.iterdir()):
            problems.append(f"missing {rafd}. " + HELP_RAFD.format(rafd=rafd))
    return problems


def run(args: argparse.Namespace) -> int:
    cfg = load_params(args)
    datasets = [name.strip().lower() for name in args.datasets.split(",") if name.strip()]
    unknown = sorted(set(datasets) - {"celeba", "rafd"})
    if unknown:
        from stargan_core.errors import ConfigError

        raise ConfigError(f"unknown dataset {unknown} in --datasets; use celeba, rafd or both")
    problems = missing_inputs(cfg, datasets)
    for line in problems:
        print(f"stargan check-data: {line}", file=sys.stderr)
    if problems:
        print("stargan check-data: see README.md, section 'Data', then run the pipeline again", file=sys.stderr)
        return 1
    print("raw data found: " + ", ".join(datasets))
    return 0
