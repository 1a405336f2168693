"""`stargan evaluate`: score trained StarGAN models and write metrics/eval.json, a Markdown report and plots.

The numbers are comparable with StarGAN (Choi et al., 2018), Table 3 and between runs; see docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import logging

from components.common import add_params_arguments, load_params

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="compute classification error, attribute transfer and parameter counts",
        description=__doc__,
    )
    add_params_arguments(parser)

    models = parser.add_argument_group("StarGAN models (checkpoint file or training run folder)")
    models.add_argument("--checkpoint", action="append", default=[], metavar="PATH",
                        help="model to evaluate in every section its labels allow: RaFD -> rafd, CelebA -> celeba, "
                             "Both -> rafd, celeba and joint (repeatable)")
    models.add_argument("--rafd-checkpoint", default=None, metavar="PATH",
                        help="model for the RaFD classification error (trained on RaFD or Both)")
    models.add_argument("--celeba-checkpoint", default=None, metavar="PATH",
                        help="model for the CelebA attribute transfer (trained on CelebA or Both)")
    models.add_argument("--joint-checkpoint", default=None, metavar="PATH",
                        help="model trained on Both, for the mask-vector experiment")

    judges = parser.add_argument_group("classifiers (from `stargan train-classifier`)")
    judges.add_argument("--expression-classifier", default=None, metavar="FILE",
                        help="expression classifier; needed for the rafd and joint sections")
    judges.add_argument("--attribute-classifier", default=None, metavar="FILE",
                        help="attribute classifier; needed for the celeba section")

    data = parser.add_argument_group("data")
    data.add_argument("--rafd-data", default=None, metavar="DIR", help="prepared RaFD (default: data.rafd_dir)")
    data.add_argument("--celeba-data", default=None, metavar="DIR", help="prepared CelebA (default: data.celeba_dir)")

    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--out", default="metrics/eval.json", help="metrics file (default: metrics/eval.json)")
    outputs.add_argument("--report", default="reports/eval.md", help="Markdown report (default: reports/eval.md)")
    outputs.add_argument("--plots", default="reports/eval_plots", metavar="DIR",
                         help="folder for the PNG plots (default: reports/eval_plots)")

    parser.add_argument("--params-only", action="store_true",
                        help="count parameters of the configured model only; needs no data, models or classifiers")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from eval.evaluate import EvaluationInputs, evaluate, route_checkpoint
    from eval.outputs import log_evaluation, save_evaluation
    from stargan_core.errors import ConfigError

    cfg = load_params(args)
    inputs = EvaluationInputs(
        rafd_checkpoint=args.rafd_checkpoint, celeba_checkpoint=args.celeba_checkpoint,
        joint_checkpoint=args.joint_checkpoint, expression_classifier=args.expression_classifier,
        attribute_classifier=args.attribute_classifier, rafd_dir=args.rafd_data, celeba_dir=args.celeba_data,
    )
    if args.params_only:
        inputs = EvaluationInputs()
    else:
        for path in args.checkpoint:
            inputs = route_checkpoint(path, inputs)
        requested = (inputs.rafd_checkpoint, inputs.celeba_checkpoint, inputs.joint_checkpoint,
                 inputs.expression_classifier, inputs.attribute_classifier)
        if not any(requested):
            raise ConfigError("nothing to evaluate; pass --checkpoint with a classifier, or --params-only to count "
                              "parameters alone")
    result = evaluate(cfg, inputs)
    written = save_evaluation(result, args.out, args.report, args.plots)
    if cfg.tracking.mlflow:
        log_evaluation(cfg, result, written)
    computed = [name for name, flag in result.metrics["sections"].items() if flag]
    print(f"evaluation ({', '.join(computed)}) -> {args.out}, {args.report}")
    return 0
