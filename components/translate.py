"""`stargan translate`: apply a trained or imported StarGAN generator to your own photos.

Writes OUT/<input>/<target>.png (lossless) per input and target, OUT/<input>/grid.png (the input, then one
labelled column per target) and OUT/summary.json. Binary attribute targets edit each input's original label,
which is all zero unless --source-attrs names the attributes the photos have.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)

EPILOG = """\
targets (combine freely; each becomes one output column):
  --attrs Blond_Hair,Male=0      one target: Name or Name=1 sets an attribute, Name=0 clears it,
                                 Name=flip inverts the original value; setting a hair colour clears the others
  --mode single                  every single-domain change: each hair colour set, every other attribute
                                 flipped, and every expression of a RaFD or joint model
  --mode combos                  columns H, G, A, H+G, H+A, G+A, H+G+A of StarGAN (Choi et al., 2018), Fig. 4:
                                 H sets a hair colour
                                 (each one, or those of --hair), G flips Male, A flips Young
  --mode expressions             every expression of a RaFD or joint (CelebA+RaFD) model
  --expressions happy,angry      the named expressions; a joint model applies them to CelebA-style photos

prepared data: --prepared DIR --split test translates a split of `stargan prepare` output instead of photos.
Each image starts from its real label in labels.csv, and its images are already cropped and resized.

examples:
  stargan translate --checkpoint runs/celeba --input photos/ --out out/ --attrs Blond_Hair,Male=0
  stargan translate --checkpoint official.pt --input me.jpg --out out/ --mode combos --source-attrs Black_Hair,Young
  stargan translate --checkpoint runs/both --input photos/ --out out/ --expressions happy,angry
  stargan translate --checkpoint runs/celeba --prepared data/prepared/celeba --split test --mode single --out out/

exit status: 0 when every input was translated, 1 when some inputs could not be read (they are listed in
summary.json and the rest are translated), 2 for an invalid request.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "translate", help="translate photos into target domains", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True,
                        help="checkpoint .pt file of `stargan train` or `stargan import-official`, or a run folder "
                             "(its newest checkpoint is used)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input",
                        help="image file or folder (searched recursively): JPEG, PNG, WebP, BMP or TIFF of any "
                             "mode and size")
    source.add_argument("--prepared", metavar="DIR",
                        help="prepared dataset folder of `stargan prepare` (images.npy, labels.csv): its images are "
                             "translated from their real labels, without crop or resize")
    parser.add_argument("--split", choices=("train", "test"), default="test",
                        help="split of --prepared to translate (default: test)")
    parser.add_argument("--out", required=True, help="output folder for PNGs, grids and summary.json")

    parser.add_argument("--attrs", action="append", default=[], metavar="NAMES",
                        help="one target as comma-separated attribute edits, e.g. Blond_Hair,Male=0 (repeatable)")
    parser.add_argument("--mode", action="append", default=[], choices=("single", "combos", "expressions"),
                        help="a set of targets: single, combos or expressions (repeatable; see below)")
    parser.add_argument("--expressions", default=None, metavar="NAMES",
                        help="comma-separated expressions of a RaFD or joint model, e.g. happy,angry")
    parser.add_argument("--hair", default=None, metavar="NAMES",
                        help="hair colours that --mode combos uses for H (default: every hair colour of the model)")

    parser.add_argument("--source-attrs", default=None, metavar="NAMES",
                        help="binary attributes the input photos have, e.g. Black_Hair,Young; the others are 0 "
                             "(default: all 0). Edits such as Male=flip and --mode single start from this label")
    parser.add_argument("--source-dataset", default=None, choices=("CelebA", "RaFD"),
                        help="dataset the photos resemble, which sets the crop and the label --source-attrs "
                             "fills (default: the model's first dataset, CelebA for joint models)")
    parser.add_argument("--no-crop", action="store_true",
                        help="resize the whole image to the model size instead of taking the training crop first "
                             "(distorts non-square images)")

    parser.add_argument("--no-grid", action="store_true", help="write no grid.png per input")
    parser.add_argument("--image-size", type=int, default=None, metavar="PX",
                        help="expected model image size in pixels; a checkpoint of another size is an error "
                             "(default: the checkpoint's size)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per generator call (default: 16)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    parser.add_argument("--no-progress", action="store_true", help="show no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from stargan_core.errors import ConfigError
    from stargan_core.translate import Translator, collect_inputs, translate_files

    if args.batch_size <= 0:
        raise ConfigError(f"--batch-size must be positive, got {args.batch_size}")
    if args.prepared is not None:
        return run_prepared(args)
    # Every check below runs before the output folder is created.
    translator = Translator.from_checkpoint(args.checkpoint, args.device, args.image_size, args.source_dataset)
    targets = translator.targets(args.attrs, args.mode, args.expressions, args.hair)
    c_org = translator.source_label(args.source_attrs)
    inputs = collect_inputs(args.input, exclude=args.out)
    summary = translate_files(
        translator, inputs, targets, args.out, c_org, crop=not args.no_crop, grid=not args.no_grid,
        batch_size=args.batch_size, progress=not args.no_progress,
    )
    if summary["num_failed"]:
        names = ", ".join(f["input"] for f in summary["failures"])
        print(f"stargan translate: {summary['num_failed']} of {summary['num_inputs']} inputs failed: {names} "
              f"(details in {args.out}/summary.json)", file=sys.stderr)
        return 1
    log.info("translated %d image(s) into %d target(s): %s", summary["num_translated"], len(targets), args.out)
    return 0


def run_prepared(args: argparse.Namespace) -> int:
    """Translate a split of a prepared dataset, each image from its real label (the DVC translate stage)."""
    from stargan_core.errors import ConfigError
    from stargan_core.translate import Translator, load_prepared_split, prepared_dataset, translate_prepared

    for option, value in (("--source-attrs", args.source_attrs), ("--source-dataset", args.source_dataset),
                          ("--no-crop", args.no_crop)):
        if value:
            raise ConfigError(f"{option} does not apply to --prepared, whose images carry their own labels and crop; "
                              f"drop {option}")
    dataset = prepared_dataset(args.prepared)
    translator = Translator.from_checkpoint(args.checkpoint, args.device, args.image_size, dataset)
    targets = translator.targets(args.attrs, args.mode, args.expressions, args.hair)
    data = load_prepared_split(translator, args.prepared, args.split)
    summary = translate_prepared(
        translator, data, targets, args.out, grid=not args.no_grid, batch_size=args.batch_size,
        progress=not args.no_progress, prepared=str(args.prepared), split=args.split,
    )
    log.info("translated %d image(s) into %d target(s): %s", summary["num_translated"], len(targets), args.out)
    return 0
