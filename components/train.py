"""`stargan train`: train StarGAN on prepared CelebA, RaFD, or both with the mask vector."""

from __future__ import annotations

import argparse
import logging

from components.common import add_params_arguments, load_params

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a StarGAN model", description=__doc__,
    )
    add_params_arguments(parser)
    parser.add_argument("--out", required=True, help="run folder for checkpoints, samples, logs and summary.json")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--restart-on-change", action="store_true",
                        help="with --resume: start from step 0 when the checkpoint was trained with other settings "
                             "(the schedule length, logging and data paths may differ)")
    parser.add_argument("--stop-at-step", type=int, default=None, metavar="N",
                        help="stop after iteration N with a checkpoint; continue later with --resume")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = load_params(args)
    if args.dry_run:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    if args.stop_at_step is not None and args.stop_at_step <= 0:
        from stargan_core.errors import ConfigError

        raise ConfigError(f"--stop-at-step must be positive, got {args.stop_at_step}")
    from stargan_core.train import train

    summary = train(cfg, args.out, resume=args.resume, stop_at_step=args.stop_at_step,
                    restart_on_change=args.restart_on_change)
    log.info("summary: %s/summary.json (step %d)", args.out, summary["step"])
    return 0
