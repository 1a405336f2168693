"""Check the CUDA paths on a GPU machine in one short run, and measure training speed there.

Usage: python benchmarks/gpu_check.py [--iters 20] [--out gpu_check.json]

First it trains a small model for 4 iterations on CUDA in fp32, bf16 autocast and bf16 with channels-last, and
checks that every loss is finite. Then it checks that a translation on CUDA does not depend on the other images
of the batch. Last, it runs the measurement of benchmarks/train_speed.py at StarGAN's setting (128 px, batch 16)
for fp32, bf16 and bf16-channels-last. It exits 1 when a check fails and prints one JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.train_speed import measure  # noqa: E402
from stargan_core.config import load_config  # noqa: E402
from stargan_core.datasets import LabeledImages  # noqa: E402
from stargan_core.labels import DatasetLabels  # noqa: E402
from stargan_core.models import Generator  # noqa: E402
from stargan_core.train import DomainData, train  # noqa: E402

SMALL = ["model.g_conv_dim=16", "model.d_conv_dim=16", "model.g_repeat_num=2", "model.d_repeat_num=5",
         "data.image_size=64", "train.batch_size=8", "train.num_iters=4", "train.num_iters_decay=2",
         "train.n_critic=2", "train.log_step=1", "train.sample_step=4", "train.model_save_step=4",
         "tracking.mlflow=false", "train.device=cuda"]


def small_run(variant: list[str], folder: Path) -> dict:
    """Train the small model for 4 iterations with ``variant`` overrides and return its summary."""
    cfg = load_config(None, SMALL + variant)
    rng = np.random.default_rng(0)
    spec = DatasetLabels("CelebA", cfg.data.selected_attrs, "binary")
    images = rng.integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (32, 5)).astype(np.float32)
    data = LabeledImages(images, labels, spec)
    return train(cfg, folder, {"CelebA": DomainData(data, data)})


def batch_independence() -> float:
    """Return the largest difference between translating one image alone and inside a batch of 8, on CUDA."""
    torch.manual_seed(0)
    G = Generator(conv_dim=64, c_dim=5, repeat_num=6).cuda().eval()
    x = torch.rand(8, 3, 128, 128, device="cuda") * 2 - 1
    c = torch.eye(5, device="cuda")[torch.arange(8) % 5]
    with torch.no_grad():
        batched = G(x, c)
        alone = G(x[3:4], c[3:4])
    return float((batched[3:4] - alone).abs().max())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20, help="timed iterations per speed variant (default: 20)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON result to this file")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine; run it where `nvidia-smi` lists a GPU", file=sys.stderr)
        return 1

    result: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "checks": {}}
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, variant in (("fp32", []), ("bf16", ["train.mixed_precision=bf16"]),
                              ("bf16-channels-last", ["train.mixed_precision=bf16", "train.channels_last=true"])):
            summary = small_run(variant, Path(tmp) / name)
            finite = all(math.isfinite(v) for v in summary["losses"].values())
            result["checks"][f"train_{name}"] = {"finite_losses": finite, "losses": summary["losses"]}
            if not finite:
                failures.append(f"{name} training produced a non-finite loss")
    difference = batch_independence()
    result["checks"]["batch_independence_max_abs"] = difference
    if difference > 1e-3:
        failures.append(f"translation depends on the batch (max difference {difference:.2e})")

    result["speed"] = [measure("paper", v, "cuda", args.iters, 3, []) for v in ("fp32", "bf16", "bf16-channels-last")]
    base = result["speed"][0]["iterations_per_second"]
    for row in result["speed"]:
        print(f"{row['variant']:<20} {row['iterations_per_second']:8.2f} it/s  ratio {row['iterations_per_second'] / base:5.2f}"
              f"  peak {row['peak_memory_mib']:8.0f} MiB")
    result["failures"] = failures
    text = json.dumps(result)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    for failure in failures:
        print(f"gpu_check: FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
