"""`stargan import-official`: convert an official StarGAN release checkpoint into this project's format."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-official", help="convert official <step>-G.ckpt/<step>-D.ckpt files", description=__doc__,
    )
    parser.add_argument("--generator", required=True, help="official generator file, e.g. 200000-G.ckpt")
    parser.add_argument("--discriminator", default=None, help="official discriminator file, e.g. 200000-D.ckpt")
    parser.add_argument(
        "--labels", default="Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
        help="comma-separated label names in the model's order (default: the five CelebA attributes of the release)",
    )
    parser.add_argument("--dataset", choices=("CelebA", "RaFD"), default="CelebA",
                        help="CelebA for binary attributes, RaFD for one categorical expression (default: CelebA)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image size in pixels when no discriminator is given (default: 128)")
    parser.add_argument("--out", required=True, help="output checkpoint file (.pt)")
    parser.add_argument("--force", action="store_true", help="replace an existing --out file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stargan_core.errors import CheckpointError
    from stargan_core.official import import_official

    if Path(args.out).exists() and not args.force:
        raise CheckpointError(f"{args.out} already exists; pass --force to replace it or choose another --out")

    path = import_official(
        args.generator, args.discriminator, args.labels.split(","), args.dataset, args.out, args.image_size
    )
    log.info("wrote %s", path)
    return 0
