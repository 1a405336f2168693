"""Parameter table: exact counts of G and D and the pairwise models of StarGAN (Choi et al., 2018), Table 3."""

import json

import pytest

from components.cli import main
from eval.params import TABLE3, millions, parameter_table
from stargan_core.config import load_config

RAFD_8 = ["eval.params_dataset=RaFD"]


def test_celeba_five_labels_exact():
    table = parameter_table(load_config(None, ["eval.params_dataset=CelebA"]))
    assert table["generator"] == 8_430_528
    assert table["discriminator"] == 44_762_048
    assert table["total"] == 8_430_528 + 44_762_048
    assert table["num_domains"] == 5


def test_rafd_eight_labels_match_table3():
    table = parameter_table(load_config(None))  # eval.params_dataset defaults to RaFD
    assert table["generator"] == 8_439_936
    assert table["discriminator"] == 44_786_624
    assert table["total"] == 53_226_560
    assert millions(table["total"]) == "53.2M"  # StarGAN row of Table 3


def test_rafd_pairwise_counts():
    table = parameter_table(load_config(None, RAFD_8))
    assert table["pairwise_models"] == 56  # k(k-1) for k = 8
    assert table["pairwise_total"] == 56 * 53_226_560
    assert table["diat_models_fixed_source"] == 7  # DIAT: 52.6M x 7
    assert table["diat_total_fixed_source"] == pytest.approx(7 * 52.6e6)
    assert table["cyclegan_models_fixed_source"] == 14  # CycleGAN: 52.6M x 14
    assert table["cyclegan_total_fixed_source"] == pytest.approx(14 * 52.6e6)


def test_joint_model_counts_all_labels():
    table = parameter_table(load_config(None, ["eval.params_dataset=Both"]))
    assert table["num_domains"] == 13
    assert table["pairwise_models"] == 13 * 12


def test_seven_expressions_smaller_generator_input():
    cfg = load_config(None, RAFD_8 + ["data.expressions=[angry,disgusted,fearful,happy,neutral,sad,surprised]",
                                      "model.c2_dim=7"])
    table = parameter_table(cfg)
    assert table["num_domains"] == 7
    assert table["generator"] == 8_439_936 - 64 * 7 * 7  # one label channel fewer in the 7x7 input conv
    assert table["diat_models_fixed_source"] == 6


def test_table3_reference_rows():
    rows = {row.method: row for row in TABLE3}
    assert rows["StarGAN"].classification_error_pct == 2.12
    assert (rows["DIAT"].parameters_per_model, rows["DIAT"].models) == (52.6e6, 7)
    assert (rows["CycleGAN"].parameters_per_model, rows["CycleGAN"].models) == (52.6e6, 14)
    assert rows["Real images"].classification_error_pct == 0.45


def test_params_only_cli_needs_no_data(tmp_path, capsys):
    out = tmp_path / "metrics" / "eval.json"
    report = tmp_path / "reports" / "eval.md"
    code = main(["evaluate", "--params-only", "--set", "tracking.mlflow=false", "--set", "data.rafd_dir=/nonexistent",
                 "--out", str(out), "--report", str(report),
                 "--plots", str(tmp_path / "plots")])
    assert code == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"params", "sections"}
    assert metrics["sections"] == {"params": 1, "expression_classifier": 0, "rafd": 0,
                                   "attribute_classifier": 0, "celeba": 0, "joint": 0}
    assert metrics["params"]["total"] == 53_226_560
    text = report.read_text()
    assert "StarGAN (Choi et al., 2018), Table 3" in text
    assert "52.6M x 14" in text
    assert "53,226,560" in text


def test_evaluate_without_inputs_fails(tmp_path, capsys):
    out = tmp_path / "eval.json"
    code = main(["evaluate", "--set", "tracking.mlflow=false", "--out", str(out)])
    assert code == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    assert not out.exists()
