"""`stargan download`: fetch CelebA (resumable, checksum-verified), or explain how to obtain RaFD.

`stargan download rafd` exits with status 1 unless --out already contains RaFD photos, because RaFD needs a
licence and this command cannot download it. A script that chains it with `stargan prepare` then stops there.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from stargan_core.download import CELEBA_URL  # stargan_core.download imports only the standard library and tqdm

    parser = subparsers.add_parser(
        "download", help="download CelebA, or explain how to obtain RaFD", description=__doc__,
    )
    datasets = parser.add_subparsers(dest="dataset", metavar="DATASET", required=True)

    celeba = datasets.add_parser(
        "celeba", help="download and extract CelebA",
        description="Download the CelebA archive with resume (HTTP Range) and optional checksum, then extract it.",
    )
    celeba.add_argument("--out", required=True, help="folder to download and extract into")
    celeba.add_argument("--url", default=CELEBA_URL, help=f"archive URL (default: {CELEBA_URL})")
    celeba.add_argument("--md5", default=None, help="expected MD5 hex digest of the archive (checked when given)")
    celeba.add_argument("--sha256", default=None,
                        help="expected SHA-256 hex digest of the archive (checked when given)")
    celeba.add_argument("--retries", type=int, default=3, help="retries after a dropped connection (default: 3)")
    celeba.set_defaults(handler=run)

    rafd = datasets.add_parser(
        "rafd", help="explain how to request RaFD",
        description="Print where to request RaFD and how to lay it out; exit 0 only if --out already contains it.",
    )
    rafd.add_argument("--out", default=None, help="folder where the RaFD photos are or will be")
    rafd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stargan_core import download

    if args.dataset == "rafd":
        found = download.count_rafd_images(args.out) if args.out else 0
        if found:
            print(f"{args.out}: {found} RaFD photos found; next: stargan prepare rafd --image-dir {args.out}")
            return 0
        print(download.RAFD_INSTRUCTIONS, end="")
        return 1

    if args.retries < 0:
        from stargan_core.errors import ConfigError

        raise ConfigError(f"--retries must be 0 or more, got {args.retries}")
    record = download.download_celeba(args.out, url=args.url, md5=args.md5, sha256=args.sha256, retries=args.retries)
    print(f"images: {record['images_dir']}")
    print(f"attributes: {record['attr_file']}")
    print(f"next: stargan prepare celeba --image-dir {record['images_dir']} --attr-file {record['attr_file']}")
    return 0
