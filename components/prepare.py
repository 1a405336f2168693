"""`stargan prepare`: turn raw CelebA or RaFD images into images.npy, labels.csv and manifest.json.

Options default to the data section of params.yaml; an option given here overrides it. See docs/data.md.
"""

from __future__ import annotations

import argparse
import logging

from components.common import add_params_arguments, load_params

log = logging.getLogger(__name__)


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _box(text: str) -> list[int]:
    try:
        return [int(value) for value in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not four integers such as 70,170,610,710") from None


def _add_common_options(parser: argparse.ArgumentParser, image_dir_help: str, crop_help: str) -> None:
    add_params_arguments(parser)
    parser.add_argument("--image-dir", default=None, help=image_dir_help)
    parser.add_argument("--out", default=None, help="output folder (default: data.celeba_dir or data.rafd_dir)")
    parser.add_argument("--image-size", type=int, default=None, help="output side in pixels (default: data.image_size)")
    parser.add_argument("--crop-size", type=int, default=None, help=crop_help)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the train/test split (default: data.split_seed)")
    parser.add_argument("--max-bad-share", type=float, default=None,
                        help="fail when more than this share of images is missing or unreadable "
                             "(default: data.max_bad_share)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes (default: every CPU core this process may use)")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing, non-empty --out folder (by default the command stops)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("prepare", help="prepare CelebA or RaFD for training", description=__doc__)
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    celeba = datasets.add_parser(
        "celeba", help="prepare CelebA (aligned 178x218 images and list_attr_celeba.txt)",
        description="Centre-crop CelebA, resize it and hold out a seeded test set of --test-size images.",
    )
    _add_common_options(
        celeba, "folder of the aligned CelebA JPEGs (default: data.celeba_image_dir)",
        "centre crop side in pixels before resizing (default: data.celeba_crop_size)",
    )
    celeba.add_argument("--attr-file", default=None,
                        help="list_attr_celeba.txt, or the CSV variant with header image_id,5_o_Clock_Shadow,... "
                             "(default: data.celeba_attr_file)")
    celeba.add_argument("--partition-file", default=None,
                        help="list_eval_partition.txt: use its test partition (2) as test; validation joins train")
    celeba.add_argument("--test-size", type=int, default=None, help="test images (default: data.test_size)")
    celeba.add_argument("--attrs", type=_names, default=None, metavar="A,B,...",
                        help="attributes to keep, comma-separated (default: data.selected_attrs)")
    celeba.set_defaults(handler=run)

    rafd = datasets.add_parser(
        "rafd", help="prepare RaFD or another expression dataset",
        description="Crop faces, resize them and split by person (or keep given train/ and test/ folders).",
    )
    _add_common_options(
        rafd, "folder of RaFD photos or expression folders (default: data.rafd_image_dir)",
        "side in pixels of the face crop before resizing (default: data.rafd_crop_size)",
    )
    rafd.add_argument("--expressions", type=_names, default=None, metavar="A,B,...",
                      help="expression names in label order (default: data.expressions)")
    rafd.add_argument("--test-share", type=float, default=None,
                      help="share of people held out for testing (default: data.rafd_test_share)")
    rafd.add_argument("--face-box", type=_box, default=None,
                      metavar="L,T,R,B", help="square face box in pixels of a 681x1024 RaFD photo "
                                              "(default: 70,170,610,710)")
    rafd.add_argument("--person-pattern", default=None, metavar="REGEX",
                      help="regular expression whose first group is the person id in a file name, for images "
                           "not named like RaFD (e.g. '^(\\d\\d)' for 0121b01.jpg)")
    rafd.add_argument("--camera-angles", type=_names, default=None, metavar="A,B,...",
                      help="RaFD camera angles to keep (default: 045,090,135, as in StarGAN); 'all' keeps every angle")
    rafd.set_defaults(handler=run)


def _overrides(args: argparse.Namespace) -> list[str]:
    """Return --set style overrides for the options given, so params.yaml validation also checks them."""
    pairs: list[tuple[str, object]] = [
        ("data.image_size", args.image_size),
        ("data.split_seed", args.seed),
        ("data.max_bad_share", args.max_bad_share),
    ]
    if args.dataset == "celeba":
        pairs += [("data.celeba_crop_size", args.crop_size), ("data.test_size", args.test_size)]
        if args.attrs is not None:
            # The model size follows the attribute list, so that choosing attributes here needs no second option.
            pairs += [("data.selected_attrs", "[" + ",".join(args.attrs) + "]"), ("model.c_dim", len(args.attrs))]
    else:
        pairs += [("data.rafd_crop_size", args.crop_size), ("data.rafd_test_share", args.test_share)]
        if args.expressions is not None:
            pairs += [("data.expressions", "[" + ",".join(args.expressions) + "]"),
                      ("model.c2_dim", len(args.expressions))]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def run(args: argparse.Namespace) -> int:
    from stargan_core.errors import ConfigError

    if args.workers is not None and args.workers <= 0:
        raise ConfigError(f"--workers must be positive, got {args.workers}")
    args.overrides = list(args.overrides) + _overrides(args)
    data = load_params(args).data

    if args.dataset == "celeba":
        from stargan_core.prepare import prepare_celeba

        out = args.out or data.celeba_dir
        manifest = prepare_celeba(
            args.image_dir or data.celeba_image_dir, args.attr_file or data.celeba_attr_file, out,
            selected_attrs=data.selected_attrs, crop_size=data.celeba_crop_size, image_size=data.image_size,
            test_size=data.test_size, seed=data.split_seed, partition_file=args.partition_file,
            max_bad_share=data.max_bad_share, workers=args.workers, force=args.force,
        )
    else:
        from stargan_core.prepare import RAFD_FACE_BOX, prepare_rafd
        from stargan_core.prepare.rafd import RAFD_CAMERA_ANGLES

        out = args.out or data.rafd_dir
        angles: tuple[str, ...] | None = RAFD_CAMERA_ANGLES
        if args.camera_angles == ["all"]:
            angles = None
        elif args.camera_angles:
            angles = tuple(args.camera_angles)
        # An empty data.rafd_person_pattern means that person ids come from RaFD file names.
        person_pattern = args.person_pattern or data.rafd_person_pattern or None
        manifest = prepare_rafd(
            args.image_dir or data.rafd_image_dir, out,
            expressions=data.expressions, crop_size=data.rafd_crop_size, image_size=data.image_size,
            test_share=data.rafd_test_share, seed=data.split_seed, face_box=args.face_box or RAFD_FACE_BOX,
            person_pattern=person_pattern,
            camera_angles=angles,
            max_bad_share=data.max_bad_share, workers=args.workers, force=args.force,
        )
    counts = manifest["counts"]
    print(f"{out}: {counts['total']} images ({counts['train']} train, {counts['test']} test), "
          f"{len(manifest['skipped'])} skipped")
    return 0

