"""The StarGAN training loop (Choi et al., 2018, Section 5.3), resumable to the bit on CPU.

Every random draw of iteration ``step`` (batch order, flips, target labels, gradient-penalty interpolation) comes
from generators seeded by ``(train.seed, step)``. The learning rate is a pure function of ``step`` too, so a run
resumed from a checkpoint continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision
import yaml
from tqdm import tqdm

from stargan_core import checkpoint as ckpt
from stargan_core.config import Config
from stargan_core.datasets import BatchSampler, LabeledImages, gather_batch, load_prepared
from stargan_core.errors import CheckpointError, DataError
from stargan_core.images import save_png, tensor_to_uint8
from stargan_core.labels import CATEGORICAL, LabelSpace, label_space_for, permute_labels
from stargan_core.losses import (
    classification_loss,
    d_adversarial_loss,
    g_adversarial_loss,
    gradient_penalty,
    reconstruction_loss,
)
from stargan_core.models import Discriminator, Generator
from stargan_core.tracking import MetricsFile, MlflowRun, data_version, git_commit, tracking_uri, write_json

log = logging.getLogger(__name__)


@dataclass
class DomainData:
    """One dataset of a run: training images and the fixed images of the sample grids."""

    train: LabeledImages
    fixed: LabeledImages
    sampler: BatchSampler | None = None


@dataclass
class TrainState:
    G: Generator
    D: Discriminator
    opt_G: torch.optim.Adam
    opt_D: torch.optim.Adam
    step: int = 0  # last completed iteration
    last: dict[str, float] = field(default_factory=dict)  # most recent value of every loss


def learning_rate(step: int, base_lr: float, num_iters: int, num_iters_decay: int) -> float:
    """Return the learning rate of iteration ``step`` (1-based): constant, then linear to exactly 0 at num_iters."""
    decay_start = num_iters - num_iters_decay
    if num_iters_decay <= 0 or step <= decay_start:
        return base_lr
    return base_lr * max(num_iters - step, 0) / num_iters_decay


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DataError(f"train.device is {name!r} but CUDA is not available; set train.device=cpu or auto")
    return device


def step_generator(seed: int, step: int, stream: int) -> torch.Generator:
    """Return a CPU generator seeded by (seed, step, stream) alone."""
    value = int(np.random.SeedSequence([seed, step, stream]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator().manual_seed(value)


def build_state(cfg: Config, space: LabelSpace, device: torch.device) -> TrainState:
    m, t = cfg.model, cfg.train
    # Initial weights depend on train.seed alone, not on whatever used the global RNG before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(t.seed)
        G = Generator(m.g_conv_dim, space.dim, m.g_repeat_num).to(device)
        D = Discriminator(cfg.data.image_size, m.d_conv_dim, space.cls_dim, m.d_repeat_num).to(device)
    if t.channels_last and device.type == "cuda":
        G = G.to(memory_format=torch.channels_last)
        D = D.to(memory_format=torch.channels_last)
    opt_G = torch.optim.Adam(G.parameters(), t.g_lr, betas=(t.beta1, t.beta2))
    opt_D = torch.optim.Adam(D.parameters(), t.d_lr, betas=(t.beta1, t.beta2))
    return TrainState(G, D, opt_G, opt_D)


def load_run_data(cfg: Config, space: LabelSpace) -> dict[str, DomainData]:
    """Load the prepared train split of each dataset of the run, and fixed sample images from its test split."""
    roots = {"CelebA": cfg.data.celeba_dir, "RaFD": cfg.data.rafd_dir}
    data = {}
    for spec in space.datasets:
        train = load_prepared(roots[spec.name], "train", spec)
        try:
            fixed = load_prepared(roots[spec.name], "test", spec)
        except DataError:
            fixed = train
        data[spec.name] = DomainData(train, fixed)
    return data


def d_step(state: TrainState, cfg: Config, space: LabelSpace, i: int, x_real, c_org, c_trg, gen) -> dict[str, float]:
    """Update D once (Eq. 6 with the WGAN-GP critic of Eq. 8) and return its losses."""
    spec, part = space.datasets[i], space.cls_slice(i)
    out_src, out_cls = state.D(x_real)
    with torch.no_grad():
        x_fake = state.G(x_real, space.to_model_label(i, c_trg))
    out_src_fake, _ = state.D(x_fake)
    loss_real, loss_fake = d_adversarial_loss(out_src, out_src_fake)
    loss_cls = classification_loss(out_cls[:, part], c_org, spec.kind)
    alpha = torch.rand(x_real.size(0), 1, 1, 1, generator=gen).to(x_real.device)
    loss_gp = gradient_penalty(lambda x: state.D(x)[0], x_real, x_fake, alpha)
    loss = loss_real + loss_fake + cfg.loss.lambda_cls * loss_cls + cfg.loss.lambda_gp * loss_gp
    state.opt_D.zero_grad(set_to_none=True)
    loss.backward()
    state.opt_D.step()
    return {"D/loss_real": loss_real.item(), "D/loss_fake": loss_fake.item(), "D/loss_cls": loss_cls.item(),
            "D/loss_gp": loss_gp.item(), "D/loss": loss.item()}


def g_step(state: TrainState, cfg: Config, space: LabelSpace, i: int, x_real, c_org, c_trg) -> dict[str, float]:
    """Update G once (Eq. 5: adversarial, target-domain classification and reconstruction) and return its losses."""
    spec, part = space.datasets[i], space.cls_slice(i)
    x_fake = state.G(x_real, space.to_model_label(i, c_trg))
    out_src, out_cls = state.D(x_fake)
    loss_fake = g_adversarial_loss(out_src)
    loss_cls = classification_loss(out_cls[:, part], c_trg, spec.kind)
    x_rec = state.G(x_fake, space.to_model_label(i, c_org))
    loss_rec = reconstruction_loss(x_real, x_rec)
    loss = loss_fake + cfg.loss.lambda_rec * loss_rec + cfg.loss.lambda_cls * loss_cls
    state.opt_G.zero_grad(set_to_none=True)
    loss.backward()
    state.opt_G.step()
    return {"G/loss_fake": loss_fake.item(), "G/loss_rec": loss_rec.item(), "G/loss_cls": loss_cls.item(),
            "G/loss": loss.item()}


def train_iteration(state: TrainState, cfg: Config, space: LabelSpace, data: dict[str, DomainData],
                    device: torch.device) -> None:
    """Run iteration ``state.step + 1``: one D update per dataset, and a G update every n_critic iterations."""
    t = cfg.train
    step = state.step + 1
    lr_g = learning_rate(step, t.g_lr, t.num_iters, t.num_iters_decay)
    lr_d = learning_rate(step, t.d_lr, t.num_iters, t.num_iters_decay)
    for group in state.opt_G.param_groups:
        group["lr"] = lr_g
    for group in state.opt_D.param_groups:
        group["lr"] = lr_d
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if t.mixed_precision == "bf16" and device.type == "cuda" \
        else nullcontext()
    for i, spec in enumerate(space.datasets):
        domain = data[spec.name]
        gen = step_generator(t.seed, step, i)
        x_real, c_org = gather_batch(domain.train, domain.sampler.indices(step - 1), device, t.flip_prob, gen)
        if t.channels_last and device.type == "cuda":
            x_real = x_real.contiguous(memory_format=torch.channels_last)
        c_trg = permute_labels(c_org, gen)
        prefix = f"{spec.name}/" if space.uses_mask else ""
        with amp:
            losses = d_step(state, cfg, space, i, x_real, c_org, c_trg, gen)
            if step % t.n_critic == 0:
                losses.update(g_step(state, cfg, space, i, x_real, c_org, c_trg))
        state.last.update({prefix + k: v for k, v in losses.items()})
    state.last["lr/G"], state.last["lr/D"] = lr_g, lr_d
    state.step = step


def metric_names(space: LabelSpace) -> list[str]:
    names = [f"D/{k}" for k in ("loss_real", "loss_fake", "loss_cls", "loss_gp", "loss")]
    names += [f"G/{k}" for k in ("loss_fake", "loss_rec", "loss_cls", "loss")]
    if space.uses_mask:
        names = [f"{d.name}/{n}" for d in space.datasets for n in names]
    return names + ["lr/G", "lr/D"]


@torch.no_grad()
def save_sample_grids(G: Generator, space: LabelSpace, data: dict[str, DomainData], count: int,
                      device: torch.device, folder: Path, step: int) -> list[Path]:
    """Translate fixed inputs into every single domain; save one grid per dataset (rows: images, columns: input, targets)."""
    paths = []
    for i, spec in enumerate(space.datasets):
        fixed = data[spec.name].fixed
        n = min(count, len(fixed))
        index = np.arange(n)
        x, c = gather_batch(fixed, index, device)
        columns = [x] + [G(x, c_trg) for _, c_trg in space.all_domain_targets(i, c)]
        grid = torch.stack(columns, dim=1).flatten(0, 1)  # row-major: each image followed by its translations
        image = torchvision.utils.make_grid(grid.float().clamp(-1, 1), nrow=len(columns), padding=2, pad_value=1.0)
        paths.append(save_png(tensor_to_uint8(image), folder / f"{step:08d}-{spec.name}.png"))
    return paths


def _check_resume(payload: dict, space: LabelSpace, state: TrainState) -> None:
    if payload["labels"] != space.to_dict():
        raise CheckpointError(
            f"{payload['path']} was trained with labels {payload['labels']} but the config asks for "
            f"{space.to_dict()}; use a new --out folder or the original settings"
        )
    if payload["model"] != ckpt.model_spec(state.G, state.D):
        raise CheckpointError(
            f"{payload['path']} has model sizes {payload['model']} but the config asks for "
            f"{ckpt.model_spec(state.G, state.D)}; use a new --out folder or the original settings"
        )


# Settings that may change between a run and its resumption: the schedule is a pure function of the step, and
# the others only affect logging, storage or where the data lives.
RESUMABLE_KEYS = {
    "train.num_iters", "train.num_iters_decay", "train.log_step", "train.sample_step", "train.model_save_step",
    "train.keep_last", "train.num_sample_images", "train.device",
}
RESUMABLE_SECTIONS = ("tracking.", "eval.", "data.celeba_dir", "data.rafd_dir", "data.celeba_image_dir",
                      "data.celeba_attr_file", "data.rafd_image_dir")


def changed_settings(saved: dict, cfg: Config) -> list[str]:
    """Return the dotted keys whose values differ from a checkpoint's config and matter for training."""
    from stargan_core.config import config_from_dict

    try:
        old = config_from_dict(saved, source="checkpoint").flat()
    except Exception:  # a config from an older version of this project: treat every key as changed
        return ["config"]
    new = cfg.flat()
    return sorted(
        key for key in new
        if old.get(key) != new[key] and key not in RESUMABLE_KEYS and not key.startswith(RESUMABLE_SECTIONS)
    )


def _clear_run(out_dir: Path) -> None:
    import shutil

    for name in ("checkpoints", "samples"):
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for name in ("train_log.csv", "summary.json", "metrics.json", "mlflow_run_id"):
        (out_dir / name).unlink(missing_ok=True)


def train(cfg: Config, out_dir: str | Path, data: dict[str, DomainData] | None = None, resume: bool = False,
          stop_at_step: int | None = None, restart_on_change: bool = False) -> dict:
    """Train StarGAN into ``out_dir`` and return a summary; ``data`` defaults to the prepared datasets of the config.

    ``out_dir`` receives ``config.yaml``, ``checkpoints/``, ``samples/``, ``train_log.csv``, ``summary.json`` and
    ``metrics.json``.
    With ``resume`` the newest checkpoint in ``out_dir`` is restored first. ``stop_at_step`` ends the run early
    (with a checkpoint) at that iteration, for time-boxed jobs that resume later. With ``restart_on_change``, a
    resume whose checkpoint was trained with other settings (anything but the schedule length, logging and paths)
    starts from step 0 instead, as a pipeline rerun after a parameter change should.
    """
    t = cfg.train
    out_dir = Path(out_dir)
    space = label_space_for(t.dataset, cfg.data.selected_attrs, cfg.data.expressions)
    data = data if data is not None else load_run_data(cfg, space)
    for i, spec in enumerate(space.datasets):
        domain = data[spec.name]
        if domain.train.image_size != cfg.data.image_size:
            raise DataError(
                f"{spec.name} images are {domain.train.image_size} px but data.image_size is {cfg.data.image_size}; "
                f"prepare the data at that size or set data.image_size={domain.train.image_size}"
            )
        domain.sampler = BatchSampler(len(domain.train), t.batch_size, t.seed, stream=i)
        empty = [name for name, count in zip(spec.names, domain.train.labels.sum(axis=0)) if count == 0]
        if spec.kind == CATEGORICAL and empty:
            log.warning("%s has no training images of %s; those domains are learned from the classifier alone "
                        "(remove them from data.expressions if the data set lacks them)", spec.name, ", ".join(empty))
    device = resolve_device(t.device)
    if t.mixed_precision == "bf16" and device.type != "cuda":
        log.warning("train.mixed_precision=bf16 applies to CUDA only; training in float32 on %s", device)
    state = build_state(cfg, space, device)
    checkpoints = out_dir / "checkpoints"
    resume_from = ckpt.latest_checkpoint(checkpoints) if resume else None
    if resume and resume_from is None:
        log.warning("--resume: no checkpoint in %s; starting from step 0", checkpoints)
    if resume_from is None and ckpt.list_checkpoints(checkpoints):
        raise CheckpointError(f"{checkpoints} already contains checkpoints; pass --resume to continue, or use a new --out")
    payload = ckpt.load_checkpoint(resume_from, map_location=device) if resume_from is not None else None
    if payload is not None:
        changed = changed_settings(payload["config"], cfg)
        if changed and not restart_on_change:
            raise CheckpointError(
                f"{resume_from} was trained with other values of {', '.join(changed)}; resume with the original "
                f"settings, use a new --out, or add --restart-on-change to start this run over"
            )
        if changed:
            log.warning("settings changed since %s (%s); restarting from step 0", resume_from, ", ".join(changed))
            _clear_run(out_dir)
            resume_from, payload = None, None
    if payload is not None:
        _check_resume(payload, space, state)
        state.G.load_state_dict(payload["G"])
        state.D.load_state_dict(payload["D"])
        state.opt_G.load_state_dict(payload["opt_G"])
        state.opt_D.load_state_dict(payload["opt_D"])
        ckpt.restore_rng_state(payload["rng"])
        state.step = int(payload["step"])
        if state.step > t.num_iters:
            raise CheckpointError(
                f"{resume_from} is at step {state.step}, past train.num_iters {t.num_iters}; "
                f"set train.num_iters to {state.step} or more"
            )
        log.info("resumed from %s at step %d", resume_from, state.step)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    metrics = MetricsFile(out_dir / "train_log.csv", metric_names(space),
                          resume_step=state.step if resume_from is not None else None)
    mlflow_run = _start_mlflow(cfg, out_dir, space, resume_from is not None)

    last_step = t.num_iters if stop_at_step is None else min(stop_at_step, t.num_iters)
    started, first_step = time.perf_counter(), state.step
    bar = tqdm(total=t.num_iters, initial=state.step, desc=f"train {t.dataset}", unit="it", dynamic_ncols=True,
               mininterval=1.0)
    status = "FAILED"
    try:
        while state.step < last_step:
            train_iteration(state, cfg, space, data, device)
            bar.update(1)
            step = state.step
            if step % t.log_step == 0 or step == last_step:
                _log_step(state, metrics, mlflow_run, bar)
            if step % t.sample_step == 0 or step == last_step:
                state.G.eval()  # no effect on the outputs: instance norm uses per-image statistics
                paths = save_sample_grids(state.G, space, data, t.num_sample_images, device, out_dir / "samples", step)
                state.G.train()
                if mlflow_run:
                    for path in paths:
                        mlflow_run.log_artifact(path, "samples")
            if step % t.model_save_step == 0 or step == last_step:
                _save(state, cfg, space, checkpoints)
        status = "FINISHED" if state.step >= t.num_iters else "KILLED"
    finally:
        bar.close()
        if mlflow_run and status == "FAILED":
            mlflow_run.finish("FAILED")
    elapsed = time.perf_counter() - started
    done = state.step - first_step
    summary = {
        "step": state.step, "num_iters": t.num_iters, "finished": state.step >= t.num_iters,
        "iterations_run": done, "seconds": round(elapsed, 3),
        "iterations_per_second": round(done / elapsed, 4) if elapsed > 0 and done else 0.0,
        "checkpoint": str(ckpt.latest_checkpoint(checkpoints)),
        "losses": {k: v for k, v in state.last.items() if np.isfinite(v)},
    }
    write_json(out_dir / "summary.json", summary)
    # metrics.json contains numbers only, as DVC metrics require.
    write_json(out_dir / "metrics.json", {"step": state.step, "iterations_per_second": summary["iterations_per_second"],
                                          **summary["losses"]})
    if mlflow_run:
        _finish_mlflow(mlflow_run, state, checkpoints, summary, status)
    log.info("trained to step %d of %d (%.2f it/s)", state.step, t.num_iters, summary["iterations_per_second"])
    return summary


def _log_step(state: TrainState, metrics: MetricsFile, mlflow_run: MlflowRun | None, bar: tqdm) -> None:
    values = dict(state.last)
    metrics.append(state.step, values)
    if mlflow_run:
        mlflow_run.log_metrics(values, state.step)
    shown = ", ".join(f"{k}={v:.4f}" for k, v in values.items() if not k.startswith("lr/"))
    log.info("step %d: %s", state.step, shown)
    bar.set_postfix_str(f"D={values.get('D/loss', values.get('CelebA/D/loss', 0.0)):.3f}", refresh=False)


def _save(state: TrainState, cfg: Config, space: LabelSpace, folder: Path) -> Path:
    payload = {
        "G": state.G.state_dict(), "D": state.D.state_dict(),
        "opt_G": state.opt_G.state_dict(), "opt_D": state.opt_D.state_dict(),
        "rng": ckpt.rng_state(), "labels": space.to_dict(), "model": ckpt.model_spec(state.G, state.D),
        "config": cfg.to_dict(),
    }
    return ckpt.save_checkpoint(folder, state.step, payload, cfg.train.keep_last)


def _start_mlflow(cfg: Config, out_dir: Path, space: LabelSpace, resumed: bool) -> MlflowRun | None:
    if not cfg.tracking.mlflow:
        return None
    roots = {"CelebA": cfg.data.celeba_dir, "RaFD": cfg.data.rafd_dir}
    tags = {"git_commit": git_commit(), "stage": "train", "dataset": cfg.train.dataset, "out_dir": str(out_dir)}
    for spec in space.datasets:
        tags[f"data_version.{spec.name}"] = data_version(roots[spec.name])
    run = MlflowRun(tracking_uri(cfg.tracking.tracking_uri), cfg.tracking.experiment, out_dir,
                    f"train-{cfg.train.dataset}-{out_dir.name}", tags)
    if not run.resumed:
        run.log_params(cfg.flat())
        run.log_artifact(out_dir / "config.yaml")
    else:
        # MLflow params are immutable: a setting changed on resume (such as a longer schedule) becomes a tag.
        logged = run.client.get_run(run.run_id).data.params
        changed = {f"changed.{k}": str(v) for k, v in cfg.flat().items() if k in logged and logged[k] != str(v)}
        run.set_tags(changed)
    return run


def _finish_mlflow(run: MlflowRun, state: TrainState, checkpoints: Path, summary: dict, status: str) -> None:
    latest = ckpt.latest_checkpoint(checkpoints)
    if latest is not None:
        run.log_artifact(latest, "checkpoints")
    if status == "FINISHED":
        run.log_pytorch_model(state.G.cpu(), "generator")
    run.finish(status)
