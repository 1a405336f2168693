"""Measure StarGAN training speed: iterations per second and peak memory, for several variants in one run.

Examples:
    python benchmarks/train_speed.py --preset paper --iters 20             # 128 px, batch 16, full-size networks
    python benchmarks/train_speed.py --preset tiny --variants fp32          # seconds on a laptop CPU
    python benchmarks/train_speed.py --preset paper --variants fp32,bf16,bf16-channels-last --device cuda
    python benchmarks/train_speed.py --preset tiny --baseline-src ../stargan-old   # this checkout against another
    python benchmarks/train_speed.py --jpeg-dir ../shared/data/celeba-sample/images  # data path against the official

Each variant trains on random in-memory images through the real training step (D update every iteration, G update
every n_critic), after ``--warmup`` untimed iterations. With ``--baseline-src`` the same measurement runs in a
subprocess that imports ``stargan_core`` from that folder, and the ratio of the two is printed. Ratios measured in
one run are comparable; absolute numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

PRESETS = {
    # StarGAN (Choi et al., 2018) Section 5.3: 128 px, batch 16, 64-channel networks with 6 blocks.
    "paper": ["data.image_size=128", "train.batch_size=16"],
    "tiny": ["data.image_size=32", "train.batch_size=8", "model.g_conv_dim=16", "model.d_conv_dim=16",
             "model.g_repeat_num=2", "model.d_repeat_num=3"],
}
VARIANTS = {
    "fp32": [],
    "bf16": ["train.mixed_precision=bf16"],
    "channels-last": ["train.channels_last=true"],
    "bf16-channels-last": ["train.mixed_precision=bf16", "train.channels_last=true"],
}


def measure(preset: str, variant: str, device: str, iters: int, warmup: int, extra: list[str]) -> dict:
    """Return iterations per second and peak memory of ``iters`` timed training iterations."""
    import numpy as np
    import torch

    from stargan_core.config import load_config
    from stargan_core.datasets import BatchSampler, LabeledImages
    from stargan_core.labels import label_space_for
    from stargan_core.train import DomainData, build_state, resolve_device, train_iteration

    overrides = PRESETS[preset] + VARIANTS[variant] + [f"train.device={device}", "tracking.mlflow=false",
                                                       f"train.num_iters={iters + warmup}", "train.num_iters_decay=0"]
    cfg = load_config(None, overrides + extra)
    space = label_space_for(cfg.train.dataset, cfg.data.selected_attrs, cfg.data.expressions)
    dev = resolve_device(cfg.train.device)
    rng = np.random.default_rng(0)
    size, count = cfg.data.image_size, max(4 * cfg.train.batch_size, 64)
    data = {}
    for i, spec in enumerate(space.datasets):
        images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
        labels = np.eye(spec.dim, dtype=np.float32)[rng.integers(0, spec.dim, count)]
        domain = DomainData(LabeledImages(images, labels, spec), LabeledImages(images, labels, spec))
        domain.sampler = BatchSampler(count, cfg.train.batch_size, cfg.train.seed, stream=i)
        data[spec.name] = domain
    state = build_state(cfg, space, dev)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    for _ in range(warmup):
        train_iteration(state, cfg, space, data, dev)
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    started = time.perf_counter()
    for _ in range(iters):
        train_iteration(state, cfg, space, data, dev)
    sync()
    seconds = time.perf_counter() - started
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated(dev) / 2**20
        memory_kind = "cuda_max_allocated"
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        memory_kind = "process_max_rss"
    return {
        "preset": preset, "variant": variant, "device": str(dev), "dataset": cfg.train.dataset,
        "batch_size": cfg.train.batch_size, "image_size": size, "iterations": iters,
        "iterations_per_second": iters / seconds, "images_per_second": iters * cfg.train.batch_size / seconds,
        "peak_memory_mib": round(peak, 1), "memory_kind": memory_kind,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
    }


def measure_data_path(jpeg_dir: Path, batches: int, batch_size: int = 16) -> dict:
    """Return batches per second of the official per-step JPEG pipeline and of this project's memory map.

    The official StarGAN release opens, flips, centre-crops (178), resizes (128) and normalises every image of
    every batch with torchvision transforms. Here the images are decoded once, and each batch is a slice of
    images.npy, flipped and scaled on the device.
    """
    import tempfile

    import numpy as np
    import torch
    import torchvision.transforms as T
    from PIL import Image

    from stargan_core.datasets import LabeledImages, gather_batch
    from stargan_core.images import center_crop_resize, load_rgb
    from stargan_core.labels import DatasetLabels

    files = sorted(p for p in jpeg_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if len(files) < batch_size:
        raise SystemExit(f"{jpeg_dir} contains {len(files)} JPEG files; at least {batch_size} are needed")
    rng = np.random.default_rng(0)
    transform = T.Compose([T.RandomHorizontalFlip(), T.CenterCrop(178), T.Resize(128), T.ToTensor(),
                           T.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))])
    started = time.perf_counter()
    for _ in range(batches):
        picks = rng.choice(len(files), batch_size, replace=False)
        torch.stack([transform(Image.open(files[i]).convert("RGB")) for i in picks])
    official = batches / (time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as tmp:
        array = np.lib.format.open_memmap(Path(tmp) / "images.npy", mode="w+", dtype=np.uint8,
                                          shape=(len(files), 128, 128, 3))
        for i, path in enumerate(files):
            array[i] = np.asarray(center_crop_resize(load_rgb(path), 178, 128))
        array.flush()
        images = np.load(Path(tmp) / "images.npy", mmap_mode="r")
        data = LabeledImages(images, np.zeros((len(files), 1), np.float32), DatasetLabels("CelebA", ("Male",), "binary"))
        generator = torch.Generator().manual_seed(0)
        started = time.perf_counter()
        for _ in range(batches):
            gather_batch(data, rng.choice(len(files), batch_size, replace=False), "cpu", 0.5, generator)
        ours = batches / (time.perf_counter() - started)
    return {"files": len(files), "batch_size": batch_size, "official_batches_per_second": official,
            "memmap_batches_per_second": ours, "ratio": ours / official}


def run_baseline(src: Path, args: argparse.Namespace, variant: str) -> dict:
    """Run this script's measurement in a subprocess that imports stargan_core from ``src``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--preset", args.preset, "--variants", variant,
               "--device", args.device, "--iters", str(args.iters), "--warmup", str(args.warmup), "--json-only"]
    for item in args.overrides:
        command += ["--set", item]
    env = dict(os.environ, PYTHONPATH=str(src.resolve()))
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="network and image size (default: tiny)")
    parser.add_argument("--variants", default="fp32", help=f"comma-separated, from {', '.join(VARIANTS)}")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--iters", type=int, default=10, help="timed iterations per variant (default: 10)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed iterations first (default: 2)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config override, e.g. train.dataset=Both (repeatable)")
    parser.add_argument("--baseline-src", type=Path, default=None,
                        help="folder of another checkout whose stargan_core is measured for comparison")
    parser.add_argument("--jpeg-dir", type=Path, default=None,
                        help="also compare the official per-step JPEG pipeline with images.npy on these JPEGs")
    parser.add_argument("--json-only", action="store_true", help="print one JSON line and nothing else")
    args = parser.parse_args()

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown}; choose from {', '.join(VARIANTS)}")
    results = [measure(args.preset, v, args.device, args.iters, args.warmup, args.overrides) for v in variants]
    if args.json_only:
        print(json.dumps(results))
        return 0
    first = results[0]["iterations_per_second"]
    print(f"{'variant':<20} {'device':<8} {'it/s':>8} {'img/s':>8} {'ratio':>7} {'peak MiB':>10}")
    for r in results:
        print(f"{r['variant']:<20} {r['device']:<8} {r['iterations_per_second']:>8.3f} {r['images_per_second']:>8.1f} "
              f"{r['iterations_per_second'] / first:>7.2f} {r['peak_memory_mib']:>10.1f}")
    if args.baseline_src is not None:
        for r in results:
            base = run_baseline(args.baseline_src, args, r["variant"])
            print(f"{r['variant']}: this checkout {r['iterations_per_second']:.3f} it/s, baseline "
                  f"{base['iterations_per_second']:.3f} it/s, ratio {r['iterations_per_second'] / base['iterations_per_second']:.2f}")
    if args.jpeg_dir is not None:
        loading = measure_data_path(args.jpeg_dir, batches=max(args.iters, 20))
        print(f"data path, batch {loading['batch_size']}: official JPEG pipeline "
              f"{loading['official_batches_per_second']:.1f} batches/s, images.npy "
              f"{loading['memmap_batches_per_second']:.1f} batches/s, ratio {loading['ratio']:.1f}")
        results.append(loading)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
