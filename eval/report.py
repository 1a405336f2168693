"""Markdown report and plots of an evaluation, with the numbers of StarGAN (Choi et al., 2018), Table 3 beside ours."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or available in pipeline stages

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eval.params import (  # noqa: E402
    TABLE3,
    TABLE3_CLASSIFIER_ACCURACY_PCT,
    TABLE3_NUM_EXPRESSIONS,
    TABLE3_SOURCE,
    millions,
)

log = logging.getLogger(__name__)

GROUP_TITLES = {
    "hair": "H (hair colour)", "gender": "G (gender)", "age": "A (age)", "hair_gender": "H+G",
    "hair_age": "H+A", "gender_age": "G+A", "hair_gender_age": "H+G+A",
}


def plot_confusion(matrix: np.ndarray, names: list[str], path: Path, title: str) -> Path:
    """Save a confusion matrix (rows: target class, columns: predicted class) as a PNG with row percentages."""
    matrix = np.asarray(matrix, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = max(4.0, 0.7 * len(names) + 2.0)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted expression")
    ax.set_ylabel("target expression")
    ax.set_title(title)
    for t in range(len(names)):
        for p in range(len(names)):
            if matrix[t, p]:
                ax.text(p, t, f"{100 * shares[t, p]:.0f}", ha="center", va="center",
                        color="white" if shares[t, p] > 0.5 else "black", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_bars(series: dict[str, dict[str, float]], path: Path, title: str, ylabel: str) -> Path:
    """Save grouped bars: one group per domain (the inner keys), one bar per series (the outer keys)."""
    domains = list(next(iter(series.values())).keys())
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(domains) + 2.0), 4.0))
    for k, (label, values) in enumerate(series.items()):
        positions = np.arange(len(domains)) + (k - (len(series) - 1) / 2) * width
        ax.bar(positions, [values.get(d, np.nan) for d in domains], width, label=label)  # NaN: no bar
    ax.set_xticks(range(len(domains)), domains, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_plots(metrics: dict[str, Any], details: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Save every plot that the computed sections allow and return them by name."""
    folder = Path(folder)
    plots: dict[str, Path] = {}
    if "confusion_real" in details:
        plots["confusion_real"] = plot_confusion(
            details["confusion_real"], details["expression_classifier_names"], folder / "confusion_real.png",
            "Expression classifier on real RaFD test images [% of row]")
    if "rafd" in metrics:
        plots["confusion_translated"] = plot_confusion(
            details["confusion_translated"], details["expressions"], folder / "confusion_translated.png",
            f"Translations from {details['source_expression']} [% of row]")
        plots["rafd_per_target"] = plot_bars(
            {"StarGAN": metrics["rafd"]["per_target_error_pct"]}, folder / "rafd_per_target_error.png",
            "Classification error per target expression", "error [%]")
    if "celeba" in metrics:
        plots["celeba_groups"] = plot_bars(
            {"requested attributes right": metrics["celeba"]["requested_pct"],
             "untouched attributes kept": metrics["celeba"].get("untouched_preserved_pct", {})},
            folder / "celeba_attribute_transfer.png", "CelebA attribute transfer", "share [%]")
    if "joint" in metrics:
        plots["joint_per_target"] = plot_bars(
            {"proper mask": metrics["joint"]["proper_mask_per_target_error_pct"],
             "wrong mask": metrics["joint"]["wrong_mask_per_target_error_pct"]},
            folder / "joint_mask_error.png", "Joint model on CelebA: expression error per target", "error [%]")
    return plots


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fmt(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def _table3_section(metrics: dict[str, Any], details: dict[str, Any], plot_links: dict[str, str]) -> list[str]:
    params = metrics["params"]
    rafd = metrics.get("rafd")
    lines = ["## RaFD classification error and parameters", ""]
    lines.append(f"Reference numbers: {TABLE3_SOURCE} (classification error in %, parameters per model x models).")
    lines.append("")

    rows = []
    if rafd:
        rows.append(["**StarGAN (this evaluation)**", _fmt(rafd["translated_error_pct"]),
                     f"{millions(rafd['model_parameters'])} x 1"])
    else:
        rows.append(["**StarGAN (this configuration)**", "-", f"{millions(params['total'])} x 1"])
    for row in TABLE3:
        size = f"{millions(row.parameters_per_model)} x {row.models}" if row.parameters_per_model else "-"
        rows.append([f"{row.method} (Table 3)", _fmt(row.classification_error_pct), size])
    if rafd:
        rows.append(["**Real images (this evaluation)**", _fmt(rafd["real_error_pct"]), "-"])
    lines += _table(["Method", "Classification error [%]", "# of parameters"], rows)
    lines.append("")

    if "expression_classifier" in metrics:
        accuracy = metrics["expression_classifier"]["test_accuracy_pct"]
        lines.append(f"Expression classifier (ResNet-18) accuracy on the real test split: {_fmt(accuracy)}% on "
                     f"{metrics['expression_classifier']['test_images']} images "
                     f"(StarGAN (Choi et al., 2018), Section 5.5: {TABLE3_CLASSIFIER_ACCURACY_PCT}% on RaFD).")
        lines.append("")

    if rafd:
        names = details["expressions"]
        lines.append(
            f"This evaluation translated {rafd['source_images']} {details['source_expression']} test faces into "
            f"{len(names) - 1} expressions ({rafd['translated_images']} images). Table 3 used "
            f"{TABLE3_NUM_EXPRESSIONS} RaFD expressions; with another expression list or another classifier the "
            f"numbers compare only loosely."
        )
        lines.append("")
        lines += _table(["Target expression", "Classification error [%]"],
                        [[name, _fmt(value)] for name, value in rafd["per_target_error_pct"].items()])
        lines.append("")

    for key, title in (("confusion_translated", "Confusion matrix of translations"),
                       ("confusion_real", "Confusion matrix of real test images"),
                       ("rafd_per_target", "Error per target expression")):
        if key in plot_links:
            lines += [f"![{title}]({plot_links[key]})", ""]
    return lines


def _params_section(metrics: dict[str, Any]) -> list[str]:
    p = metrics["params"]
    k = p["num_domains"]
    lines = ["## Parameter count", ""]
    lines += _table(["Model", "Parameters"], [
        ["Generator G", f"{p['generator']:,}"],
        ["Discriminator D", f"{p['discriminator']:,}"],
        ["StarGAN G + D (one model for all domains)", f"{p['total']:,} ({millions(p['total'])})"],
        [f"{p['pairwise_models']} pairwise models of this size, k(k-1) for k = {k} domains",
         f"{p['pairwise_total']:,} ({millions(p['pairwise_total'])})"],
        [f"DIAT, one source into {k - 1} targets: {p['diat_models_fixed_source']} x 52.6M (Table 3 sizes)",
         millions(p["diat_total_fixed_source"])],
        [f"CycleGAN, one source and {k - 1} targets: {p['cyclegan_models_fixed_source']} x 52.6M (Table 3 sizes)",
         millions(p["cyclegan_total_fixed_source"])],
    ])
    lines.append("")
    return lines


def _celeba_section(metrics: dict[str, Any], plot_links: dict[str, str]) -> list[str]:
    lines = ["## CelebA attribute transfer", ""]
    if "attribute_classifier" in metrics:
        a = metrics["attribute_classifier"]
        per = ", ".join(f"{name} {_fmt(v)}%" for name, v in a["per_attribute_accuracy_pct"].items())
        lines += [f"Attribute classifier (ResNet-18) accuracy on {a['test_images']} real test images: "
                  f"mean {_fmt(a['test_accuracy_pct'])}% ({per}).", ""]
    if "celeba" in metrics:
        c = metrics["celeba"]
        lines.append(
            "An automatic stand-in for the user study of StarGAN (Choi et al., 2018), Tables 1 and 2: those tables "
            "rank methods by human votes, so their percentages are not comparable with these shares."
        )
        lines.append("")
        preserved = c.get("untouched_preserved_pct", {})
        rows = [[GROUP_TITLES.get(g, g), _fmt(c["requested_pct"][g]),
                 _fmt(preserved[g]) if g in preserved else "- (none)",
                 str(c["translated_images"][g])] for g in c["requested_pct"]]
        lines += _table(["Change", "Requested attributes right [%]", "Untouched attributes kept [%]",
                         "Translations"], rows)
        lines.append("")
        if "celeba_groups" in plot_links:
            lines += [f"![CelebA attribute transfer]({plot_links['celeba_groups']})", ""]
    return lines


def _joint_section(metrics: dict[str, Any], plot_links: dict[str, str]) -> list[str]:
    j = metrics["joint"]
    lines = ["## Joint model and the mask vector", ""]
    lines.append(
        f"{j['source_images']} CelebA test faces translated into each RaFD expression by the joint model. With the "
        "wrong mask, StarGAN (Choi et al., 2018), Section 5.6 and Fig. 7, observes that the model changes the age "
        "instead of the expression, so a high error there is expected."
    )
    lines.append("")
    rows = [["proper mask (RaFD)", _fmt(j["proper_mask_error_pct"])],
            ["wrong mask (CelebA)", _fmt(j["wrong_mask_error_pct"])]]
    header = ["Mask", "Expression classification error [%]"]
    if "proper_mask_age_changed_pct" in j:
        header.append("Predicted age changed [%]")
        rows[0].append(_fmt(j["proper_mask_age_changed_pct"]))
        rows[1].append(_fmt(j["wrong_mask_age_changed_pct"]))
    lines += _table(header, rows)
    lines.append("")
    if "joint_per_target" in plot_links:
        lines += [f"![Joint model error per target]({plot_links['joint_per_target']})", ""]
    return lines


def write_report(metrics: dict[str, Any], details: dict[str, Any], path: Path, plots: dict[str, Path]) -> Path:
    """Write the Markdown report; image links are relative to the report's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    links = {name: Path(os.path.relpath(plot, path.parent)).as_posix() for name, plot in plots.items()}
    computed = [name for name, flag in metrics["sections"].items() if flag]
    lines = ["# StarGAN evaluation", "", f"Sections computed: {', '.join(computed)}.", ""]
    inputs = details.get("inputs", {})
    used = [(key, value) for key, value in inputs.items() if value]
    if used:
        lines += _table(["Input", "Path"], [[key, f"`{value}`"] for key, value in used])
        lines.append("")
    lines += _table3_section(metrics, details, links)
    lines += _params_section(metrics)
    if "celeba" in metrics or "attribute_classifier" in metrics:
        lines += _celeba_section(metrics, links)
    if "joint" in metrics:
        lines += _joint_section(metrics, links)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    log.info("wrote report %s", path)
    return path
