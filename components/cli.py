"""The `stargan` command: one sub-command per pipeline step.

Each step lives in its own module with ``register(subparsers)`` and ``run(args) -> int``. Modules import torch and
other heavy libraries inside ``run`` so that ``stargan --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from stargan_core.errors import StarGANError

# Sub-command modules, in the order `stargan --help` lists them.
STEP_MODULES = (
    "components.check_data",
    "components.download",
    "components.prepare",
    "components.train",
    "components.import_official",
    "components.translate",
    "components.train_classifier",
    "components.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stargan",
        description="StarGAN multi-domain face translation: prepare data, train, translate and evaluate.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in STEP_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a step that is not part of this installation
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("alembic", "mlflow", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.handler(args) or 0)
    except StarGANError as exc:
        print(f"stargan {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stargan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
