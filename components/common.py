"""Arguments and helpers that several sub-commands share."""

from __future__ import annotations

import argparse


def add_params_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --params and repeatable --set key=value."""
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one setting with a dotted key, e.g. --set train.num_iters=20 (repeatable)",
    )


def load_params(args: argparse.Namespace):
    """Return the Config from --params and --set (imported lazily to keep --help fast)."""
    from stargan_core.config import load_config

    return load_config(args.params, args.overrides)
