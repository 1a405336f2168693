"""`stargan train-classifier`: train the ResNet-18 judge classifier of expressions (RaFD) or attributes (CelebA)."""

from __future__ import annotations

import argparse
import logging

from components.common import add_params_arguments, load_params

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-classifier", help="train the expression or attribute classifier used by `stargan evaluate`",
        description=__doc__,
    )
    add_params_arguments(parser)
    parser.add_argument("--task", choices=("expression", "attributes"), required=True,
                        help="expression: RaFD expressions (data.expressions); "
                             "attributes: CelebA attributes (data.selected_attrs)")
    parser.add_argument("--data", default=None,
                        help="prepared dataset folder (default: data.rafd_dir or data.celeba_dir of the params)")
    parser.add_argument("--out", required=True, help="classifier checkpoint file to write, e.g. models/expression.pt")
    parser.add_argument("--metrics", default=None,
                        help="JSON file for the test-split accuracy (default: the --out path with suffix .json)")
    parser.add_argument("--init-weights", default=None, metavar="FILE",
                        help="ResNet-18 state dict to start from (default: eval.classifier_init; empty: random)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from eval.classifier import save_classifier, score_classifier, train_classifier
    from stargan_core.datasets import load_prepared
    from stargan_core.labels import BINARY, CATEGORICAL, DatasetLabels
    from stargan_core.tracking import write_json
    from stargan_core.train import resolve_device

    cfg = load_params(args)
    if args.task == "expression":
        spec = DatasetLabels("RaFD", cfg.data.expressions, CATEGORICAL)
        root, epochs = args.data or cfg.data.rafd_dir, cfg.eval.classifier_epochs
    else:
        spec = DatasetLabels("CelebA", cfg.data.selected_attrs, BINARY)
        root, epochs = args.data or cfg.data.celeba_dir, cfg.eval.attribute_classifier_epochs
    init_weights = args.init_weights if args.init_weights is not None else cfg.eval.classifier_init
    device = resolve_device(cfg.train.device)

    train = load_prepared(root, "train", spec)
    test = load_prepared(root, "test", spec)
    log.info("training the %s classifier on %d images of %s for %d epochs on %s",
             args.task, len(train), root, epochs, device)
    classifier = train_classifier(train, cfg.eval, epochs, device, init_weights or None)
    score = score_classifier(classifier, test, cfg.eval.batch_size, device, cfg.eval.attribute_threshold)
    metrics = dict(score.metrics, train_images=len(train), epochs=epochs,
                   final_train_loss=round(classifier.meta["final_train_loss"], 6))
    save_classifier(classifier, args.out, metrics)
    metrics_path = Path(args.metrics) if args.metrics else Path(args.out).with_suffix(".json")
    write_json(metrics_path, metrics)
    print(f"{args.task} classifier: {metrics['test_accuracy_pct']:.2f}% test accuracy on {len(test)} images "
          f"-> {args.out}")
    if cfg.tracking.mlflow:
        _log_mlflow(cfg, args, metrics, Path(args.out), metrics_path)
    return 0


def _log_mlflow(cfg, args: argparse.Namespace, metrics: dict, checkpoint, metrics_path) -> None:
    import tempfile
    from pathlib import Path

    from eval.metrics import flatten_metrics
    from stargan_core.tracking import MlflowRun, data_version, git_commit, tracking_uri

    root = args.data or (cfg.data.rafd_dir if args.task == "expression" else cfg.data.celeba_dir)
    tags = {"stage": "train_classifier", "task": args.task, "git_commit": git_commit(),
            "data_version": data_version(root), "checkpoint": str(checkpoint)}
    # A fresh folder, so that MlflowRun starts a new run instead of reopening one.
    with tempfile.TemporaryDirectory(prefix="stargan-classifier-") as folder:
        run = MlflowRun(tracking_uri(cfg.tracking.tracking_uri), cfg.tracking.experiment, Path(folder),
                        f"classifier-{args.task}", tags)
    run.log_params({k: v for k, v in cfg.flat().items() if k.startswith(("eval.", "data."))})
    run.log_metrics(flatten_metrics(metrics), step=0)
    run.log_artifact(metrics_path)
    run.finish()
