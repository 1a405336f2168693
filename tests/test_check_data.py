"""`stargan check-data`: the pipeline stops at once with instructions when raw data is missing."""

from pathlib import Path

from components.cli import main

PARAMS = str(Path(__file__).resolve().parents[1] / "params.yaml")


def test_missing_data_names_paths_and_download(tmp_path, capsys):
    status = main(["check-data", "--params", PARAMS, "--set", f"data.celeba_image_dir={tmp_path / 'images'}",
                   "--set", f"data.celeba_attr_file={tmp_path / 'attr.txt'}",
                   "--set", f"data.rafd_image_dir={tmp_path / 'rafd'}"])
    err = capsys.readouterr().err
    assert status == 1
    assert f"missing {tmp_path / 'images'}, {tmp_path / 'attr.txt'}" in err
    assert "stargan download celeba --out data/raw" in err
    assert "https://rafd.socsci.ru.nl/" in err


def test_present_data_passes(tmp_path, celeba_sample, expression_sample, capsys):
    status = main(["check-data", "--params", PARAMS, "--set", f"data.celeba_image_dir={celeba_sample / 'images'}",
                   "--set", f"data.celeba_attr_file={celeba_sample / 'list_attr_celeba.txt'}",
                   "--set", f"data.rafd_image_dir={expression_sample}"])
    assert status == 0
    assert "raw data found: celeba, rafd" in capsys.readouterr().out


def test_single_dataset_and_unknown_name(tmp_path, celeba_sample, capsys):
    status = main(["check-data", "--params", PARAMS, "--datasets", "celeba",
                   "--set", f"data.celeba_image_dir={celeba_sample / 'images'}",
                   "--set", f"data.celeba_attr_file={celeba_sample / 'list_attr_celeba.txt'}"])
    assert status == 0
    assert main(["check-data", "--params", PARAMS, "--datasets", "celeba,lfw"]) == 2
    assert "unknown dataset ['lfw']" in capsys.readouterr().err
