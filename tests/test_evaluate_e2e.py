"""`stargan evaluate` end to end on the real samples: tiny StarGAN models, tiny classifiers, every section.

The data is prepared with `stargan prepare`: the 105-image expression sample (7 expressions, split by performer)
replaces RaFD, and the first 200 images of the CelebA sample for CelebA, both at 32 px.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from components.cli import main
from stargan_core.checkpoint import atomic_torch_save, load_checkpoint

pytestmark = pytest.mark.slow

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
EXPRESSIONS = ("angry", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
CELEBA_IMAGES = 200
TINY = [
    "model.g_conv_dim=8", "model.d_conv_dim=8", "model.g_repeat_num=1", "model.d_repeat_num=3",
    "data.image_size=32", "train.batch_size=4", "train.num_iters=4", "train.num_iters_decay=2", "train.n_critic=2",
    "train.log_step=2", "train.sample_step=4", "train.model_save_step=4", "train.num_sample_images=2",
    "tracking.mlflow=false", f"data.expressions=[{','.join(EXPRESSIONS)}]", "model.c2_dim=7",
    "eval.classifier_image_size=32", "eval.classifier_epochs=2", "eval.attribute_classifier_epochs=1",
    "eval.classifier_batch_size=16", "eval.batch_size=16", "eval.max_test_images=8",
]
SECTION_KEYS = {"params", "expression_classifier", "rafd", "attribute_classifier", "celeba", "joint"}
GROUPS = {"hair", "gender", "age", "hair_gender", "hair_age", "gender_age", "hair_gender_age"}


def with_sets(overrides):
    args = []
    for item in overrides:
        args += ["--set", item]
    return args


def strict_json(path):
    def reject(constant):
        raise ValueError(f"{path} contains {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=reject)


@pytest.fixture(scope="module")
def workspace(expression_sample, celeba_sample, tmp_path_factory):
    """Prepared data, a joint and a RaFD-only tiny StarGAN, and both classifiers, all made with the CLI."""
    root = tmp_path_factory.mktemp("evaluate")
    rafd, celeba = root / "data" / "rafd", root / "data" / "celeba"
    assert main(["prepare", "rafd", "--image-dir", str(expression_sample), "--out", str(rafd),
                 "--expressions", ",".join(EXPRESSIONS), "--person-pattern", r"^(\d\d)", "--image-size", "32",
                 "--test-share", "0.3", "--workers", "1", *with_sets(TINY)]) == 0
    lines = (celeba_sample / "list_attr_celeba.txt").read_text().splitlines()
    attr_file = root / "list_attr_subset.txt"
    attr_file.write_text("\n".join([str(CELEBA_IMAGES), lines[1], *lines[2:2 + CELEBA_IMAGES]]) + "\n")
    assert main(["prepare", "celeba", "--image-dir", str(celeba_sample / "images"), "--attr-file", str(attr_file),
                 "--out", str(celeba), "--image-size", "32", "--test-size", "40", "--workers", "1",
                 *with_sets(TINY)]) == 0

    sets = TINY + [f"data.rafd_dir={rafd}", f"data.celeba_dir={celeba}"]
    models = {}
    for dataset in ("Both", "RaFD"):
        models[dataset] = root / "runs" / dataset
        assert main(["train", "--out", str(models[dataset]),
                     *with_sets(sets + [f"train.dataset={dataset}"])]) == 0
    classifiers = {}
    for task in ("expression", "attributes"):
        classifiers[task] = root / "models" / f"{task}.pt"
        assert main(["train-classifier", "--task", task, "--out", str(classifiers[task]),
                     "--metrics", str(root / "metrics" / f"classifier_{task}.json"), *with_sets(sets)]) == 0
    return {"root": root, "rafd": rafd, "celeba": celeba, "sets": sets, "models": models,
            "classifiers": classifiers}


def evaluate(workspace, out_dir, *args, sets=()):
    return main(["evaluate", "--params", str(PARAMS), *args, "--out", str(out_dir / "eval.json"), "--report", str(out_dir / "eval.md"),
                 "--plots", str(out_dir / "plots"), *with_sets(workspace["sets"] + list(sets))])


def test_train_classifier_writes_metrics(workspace):
    metrics = strict_json(workspace["root"] / "metrics" / "classifier_expression.json")
    assert 0.0 <= metrics["test_accuracy_pct"] <= 100.0
    assert metrics["epochs"] == 2
    test = pd.read_csv(workspace["rafd"] / "labels.csv").query("split == 'test'")
    assert metrics["test_images"] == len(test)
    assert set(metrics["per_class_accuracy_pct"]) == set(EXPRESSIONS)
    attributes = strict_json(workspace["root"] / "metrics" / "classifier_attributes.json")
    assert set(attributes["per_attribute_accuracy_pct"]) == {"Black_Hair", "Blond_Hair", "Brown_Hair", "Male",
                                                             "Young"}


def test_joint_checkpoint_fills_every_section(workspace, tmp_path):
    code = evaluate(workspace, tmp_path, "--checkpoint", str(workspace["models"]["Both"]),
                    "--expression-classifier", str(workspace["classifiers"]["expression"]),
                    "--attribute-classifier", str(workspace["classifiers"]["attributes"]),
                    sets=["eval.params_dataset=Both"])
    assert code == 0
    metrics = strict_json(tmp_path / "eval.json")
    assert set(metrics) == SECTION_KEYS | {"sections"}
    assert metrics["sections"] == {name: 1 for name in SECTION_KEYS}

    rafd = metrics["rafd"]
    assert set(rafd) == {"translated_error_pct", "real_error_pct", "source_images", "translated_images",
                         "model_parameters", "per_target_error_pct"}
    assert set(rafd["per_target_error_pct"]) == set(EXPRESSIONS) - {"neutral"}
    assert rafd["translated_images"] == 6 * rafd["source_images"]
    assert rafd["real_error_pct"] == pytest.approx(100.0 - metrics["expression_classifier"]["test_accuracy_pct"])
    mean_error = sum(rafd["per_target_error_pct"].values()) / 6
    assert rafd["translated_error_pct"] == pytest.approx(mean_error, abs=1e-3)  # equal images per target

    celeba = metrics["celeba"]
    assert celeba["source_images"] == 8  # eval.max_test_images
    for key in ("requested_pct", "translated_images"):
        assert set(celeba[key]) == GROUPS, key
    assert set(celeba["untouched_preserved_pct"]) == GROUPS - {"hair_gender_age"}  # H+G+A sets all 5 attributes
    assert celeba["translated_images"]["gender"] == 8
    assert celeba["translated_images"]["gender_age"] == 8

    joint = metrics["joint"]
    assert joint["translated_images"] == 7 * 8
    assert set(joint["proper_mask_per_target_error_pct"]) == set(EXPRESSIONS)
    for key in ("proper_mask_error_pct", "wrong_mask_error_pct", "proper_mask_age_changed_pct",
                "wrong_mask_age_changed_pct"):
        assert 0.0 <= joint[key] <= 100.0, key

    assert metrics["params"]["num_domains"] == 5 + 7
    assert metrics["params"]["total"] == rafd["model_parameters"] == joint["model_parameters"]
    plots = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert plots == ["celeba_attribute_transfer.png", "confusion_real.png", "confusion_translated.png",
                     "joint_mask_error.png", "rafd_per_target_error.png"]
    report = (tmp_path / "eval.md").read_text()
    assert "StarGAN (Choi et al., 2018), Table 3" in report
    assert "| StarGAN (Table 3) | 2.12 | 53.2M x 1 |" in report
    assert f"| **StarGAN (this evaluation)** | {rafd['translated_error_pct']:.2f} |" in report
    assert "](plots/confusion_translated.png)" in report


def test_rafd_model_logs_same_values_to_mlflow(workspace, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a SQLite store puts artifacts in ./mlruns
    code = evaluate(workspace, tmp_path, "--rafd-checkpoint", str(workspace["models"]["RaFD"]),
                    "--expression-classifier", str(workspace["classifiers"]["expression"]),
                    sets=["tracking.mlflow=true", "tracking.experiment=eval-test"])
    assert code == 0
    metrics = strict_json(tmp_path / "eval.json")
    assert set(metrics) == {"sections", "params", "expression_classifier", "rafd"}
    assert metrics["sections"]["celeba"] == 0
    assert metrics["params"]["num_domains"] == 7  # eval.params_dataset defaults to RaFD, here 7 expressions
    assert metrics["params"]["total"] == metrics["rafd"]["model_parameters"]

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("eval-test")
    runs = client.search_runs([experiment.experiment_id], "tags.stage = 'evaluate'")
    assert len(runs) == 1
    logged = runs[0].data.metrics
    assert logged["rafd/translated_error_pct"] == metrics["rafd"]["translated_error_pct"]
    assert logged["rafd/per_target_error_pct/happy"] == metrics["rafd"]["per_target_error_pct"]["happy"]
    assert logged["params/total"] == metrics["params"]["total"]
    assert runs[0].data.tags["input.rafd_checkpoint"] == str(workspace["models"]["RaFD"])


def test_diverged_generator_fails_without_file(workspace, tmp_path, capsys):
    payload = load_checkpoint(workspace["models"]["RaFD"])
    payload["G"] = {key: torch.full_like(value, float("nan")) if value.is_floating_point() else value
                    for key, value in payload["G"].items()}
    payload.pop("path")
    broken = tmp_path / "step_00000004.pt"
    atomic_torch_save(payload, broken)
    code = evaluate(workspace, tmp_path, "--rafd-checkpoint", str(broken),
                    "--expression-classifier", str(workspace["classifiers"]["expression"]))
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith("stargan evaluate: error: ")
    assert "NaN or infinite pixels" in errors[0]
    assert not (tmp_path / "eval.json").exists()


def copy_prepared(source, target, change):
    shutil.copytree(source, target)
    table = pd.read_csv(target / "labels.csv", dtype=str)
    change(table)
    table.to_csv(target / "labels.csv", index=False)
    return target


def test_no_neutral_test_faces_fails(workspace, tmp_path, capsys):
    def move_neutral_to_train(table):
        table.loc[table["expression"] == "neutral", "split"] = "train"

    rafd = copy_prepared(workspace["rafd"], tmp_path / "rafd", move_neutral_to_train)
    code = evaluate(workspace, tmp_path, "--rafd-checkpoint", str(workspace["models"]["RaFD"]),
                    "--expression-classifier", str(workspace["classifiers"]["expression"]), "--rafd-data", str(rafd))
    assert code == 2
    assert "contains no 'neutral' images" in capsys.readouterr().err
    assert not (tmp_path / "eval.json").exists()


def test_missing_test_split_fails(workspace, tmp_path, capsys):
    def everything_train(table):
        table["split"] = "train"

    rafd = copy_prepared(workspace["rafd"], tmp_path / "rafd", everything_train)
    code = evaluate(workspace, tmp_path, "--checkpoint", str(workspace["models"]["RaFD"]),
                    "--expression-classifier", str(workspace["classifiers"]["expression"]), "--rafd-data", str(rafd))
    assert code == 2
    assert "no rows in split 'test'" in capsys.readouterr().err
    assert not (tmp_path / "eval.json").exists()


def test_checkpoint_without_classifier_fails(workspace, tmp_path, capsys):
    code = evaluate(workspace, tmp_path, "--checkpoint", str(workspace["models"]["RaFD"]))
    assert code == 2
    assert "pass --expression-classifier" in capsys.readouterr().err
    assert not (tmp_path / "eval.json").exists()
