"""Tests of `stargan translate` on real sample photos and generated odd or broken files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from components.cli import main
from stargan_core.config import load_config
from stargan_core.datasets import LabeledImages
from stargan_core.images import center_crop_resize, load_rgb
from stargan_core.labels import DatasetLabels
from stargan_core.train import DomainData, train

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Run the tiny models on one thread: OpenMP spin-waiting on shared cores makes 2 threads much slower here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def official_pt(tmp_path_factory, official_compat: Path) -> Path:
    """The official-format checkpoint converted with `stargan import-official` (32 px, five CelebA attributes)."""
    out = tmp_path_factory.mktemp("official") / "official.pt"
    status = main(["import-official", "--generator", str(official_compat / "1000-G.ckpt"),
                   "--discriminator", str(official_compat / "1000-D.ckpt"), "--out", str(out)])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def joint_run(tmp_path_factory, celeba_sample: Path) -> Path:
    """A CelebA+RaFD model with the mask vector, trained for two iterations on real CelebA faces at 32 px."""
    out = tmp_path_factory.mktemp("joint_run")
    cfg = load_config(None, [
        "model.g_conv_dim=8", "model.d_conv_dim=8", "model.g_repeat_num=1", "model.d_repeat_num=3",
        "data.image_size=32", "train.num_iters=2", "train.num_iters_decay=1", "train.n_critic=1",
        "train.log_step=1", "train.sample_step=2", "train.model_save_step=2", "train.batch_size=4",
        "tracking.mlflow=false", "train.dataset=Both",
    ])
    files = sorted((celeba_sample / "images").glob("*.jpg"))[:8]
    faces = np.stack([np.asarray(center_crop_resize(load_rgb(f), 178, 32)) for f in files])
    rng = np.random.default_rng(0)
    celeba = LabeledImages(faces, rng.integers(0, 2, (8, 5)).astype(np.float32),
                           DatasetLabels("CelebA", cfg.data.selected_attrs, "binary"))
    rafd = LabeledImages(faces, np.eye(8, dtype=np.float32)[rng.integers(0, 8, 8)],
                         DatasetLabels("RaFD", cfg.data.expressions, "categorical"))
    train(cfg, out, {"CelebA": DomainData(celeba, celeba), "RaFD": DomainData(rafd, rafd)})
    return out


@pytest.fixture()
def photos(tmp_path: Path, celeba_sample: Path) -> Path:
    """A folder with links to four real CelebA photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for file in sorted((celeba_sample / "images").glob("*.jpg"))[:4]:
        (folder / file.name).symlink_to(file)
    return folder


def translate(*args: str) -> int:
    return main(["translate", "--no-progress", *args])


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "RGB"
        return np.asarray(image)


def write_odd_inputs(folder: Path, face: Image.Image) -> list[str]:
    """Write the face in every file type and mode a user is likely to have; return the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    face.convert("L").save(folder / "grey.jpg")
    rgba = face.convert("RGBA")
    alpha = Image.new("L", face.size, 0)
    alpha.paste(255, (0, 0, 89, 218))  # left half opaque, right half transparent
    rgba.putalpha(alpha)
    rgba.save(folder / "rgba.png")
    face.convert("LA").save(folder / "grey_alpha.png")
    palette = face.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    palette.info["transparency"] = 0
    palette.save(folder / "palette.png", transparency=0)
    face.convert("CMYK").save(folder / "cmyk.jpg")
    deep = (np.asarray(face.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(folder / "deep16.png")
    face.save(folder / "photo.webp", lossless=True)
    face.save(folder / "photo.bmp")
    face.save(folder / "photo.tif")
    exif = Image.Exif()
    exif[0x0112] = 8  # shown rotated 90 degrees counter-clockwise
    face.transpose(Image.Transpose.ROTATE_270).save(folder / "rotated.jpg", exif=exif)
    face.resize((400, 300)).save(folder / "landscape.png")
    face.resize((1, 1)).save(folder / "tiny.png")
    return sorted(p.name for p in folder.iterdir())


def write_broken_inputs(folder: Path, face_file: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    data = face_file.read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "text.png").write_text("not an image\n")
    return ["empty.jpg", "text.png", "truncated.jpg"]


# ---------------------------------------------------------------------------------------------------------------


def test_attrs_on_real_photos(official_pt: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                       "--attrs", "Blond_Hair,Male=0", "--attrs", "Black_Hair")
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["targets"] == ["Blond_Hair+Male=0", "Black_Hair"]
    assert summary["num_translated"] == 4
    assert summary["failures"] == []
    for file in sorted(photos.iterdir()):
        folder = out / file.stem
        assert read_png(folder / "Blond_Hair+Male=0.png").shape == (32, 32, 3)
        assert read_png(folder / "Black_Hair.png").shape == (32, 32, 3)
        grid = read_png(folder / "grid.png")
        assert grid.shape[1] == 3 * (32 + 2) + 2
    record = summary["inputs"][0]
    assert record["outputs"]["Black_Hair"] == f"{record['key']}/Black_Hair.png"


def test_input_column_is_training_crop(official_pt: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                     "--attrs", "Male") == 0
    file = sorted(photos.iterdir())[0]
    grid = read_png(out / file.stem / "grid.png")
    expected = np.asarray(center_crop_resize(load_rgb(file), 178, 32))
    assert np.array_equal(grid[-34:-2, 2:34], expected)


def test_combos_mode(official_pt: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                       "--mode", "combos", "--hair", "Blond_Hair", "--source-attrs", "Black_Hair,Young")
    assert status == 0
    names = sorted(p.name for p in (out / sorted(photos.iterdir())[0].stem).iterdir())
    assert names == sorted(["Blond_Hair.png", "Male=flip.png", "Young=flip.png", "Blond_Hair+Male=flip.png",
                            "Blond_Hair+Young=flip.png", "Male=flip+Young=flip.png",
                            "Blond_Hair+Male=flip+Young=flip.png", "grid.png"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source_label"] == {"Black_Hair": 1.0, "Blond_Hair": 0.0, "Brown_Hair": 0.0, "Male": 0.0,
                                       "Young": 1.0}


def test_single_mode_and_no_grid(official_pt: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                       "--mode", "single", "--no-grid")
    assert status == 0
    folder = out / sorted(photos.iterdir())[0].stem
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["Black_Hair.png", "Blond_Hair.png", "Brown_Hair.png", "Male=flip.png", "Young=flip.png"])


def test_joint_expressions_on_celeba_photos(joint_run: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(joint_run), "--input", str(photos), "--out", str(out),
                       "--expressions", "happy,angry", "--attrs", "Blond_Hair")
    assert status == 0
    folder = out / sorted(photos.iterdir())[0].stem
    assert {"happy.png", "angry.png", "Blond_Hair.png", "grid.png"} == {p.name for p in folder.iterdir()}
    assert not np.array_equal(read_png(folder / "happy.png"), read_png(folder / "angry.png"))


def test_joint_expressions_on_raw_rafd_photos(joint_run: Path, rafd_sample: Path, tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(joint_run), "--input", str(rafd_sample), "--out", str(out),
                       "--mode", "expressions", "--source-dataset", "RaFD")
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_translated"] == len(list(rafd_sample.glob("*/*.jpg")))
    assert summary["source_dataset"] == "RaFD"
    assert len(summary["targets"]) == 8
    key = summary["inputs"][0]["key"]
    assert "/" in key  # expression sub-folders are kept
    assert read_png(out / key / "surprised.png").shape == (32, 32, 3)


def test_every_input_kind(official_pt: Path, celeba_sample: Path, tmp_path: Path):
    face = load_rgb(sorted((celeba_sample / "images").glob("*.jpg"))[0])
    names = write_odd_inputs(tmp_path / "odd", face)
    modes = {}
    for name in names:
        with Image.open(tmp_path / "odd" / name) as image:
            modes[name] = (image.format, image.mode)
    assert modes["cmyk.jpg"] == ("JPEG", "CMYK")
    assert modes["deep16.png"] == ("PNG", "I;16")
    assert modes["palette.png"] == ("PNG", "P")
    assert modes["grey_alpha.png"] == ("PNG", "LA")
    assert modes["photo.webp"] == ("WEBP", "RGB")
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(tmp_path / "odd"), "--out", str(out),
                       "--attrs", "Blond_Hair")
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_translated"] == len(names)
    keys = {Path(r["input"]).name: r["key"] for r in summary["inputs"]}
    assert keys["photo.webp"] == "photo_webp"  # photo.bmp, photo.tif and photo.webp share the stem
    for record in summary["inputs"]:
        assert read_png(out / record["outputs"]["Blond_Hair"]).shape == (32, 32, 3)

    def input_column(name: str) -> np.ndarray:
        return read_png(out / keys[name] / "grid.png")[-34:-2, 2:34].astype(int)

    assert (input_column("rgba.png")[:, -4:] == 255).all()  # transparent right half on white
    grey = input_column("grey.jpg")
    assert (np.abs(grey[..., 0] - grey[..., 1]) <= 1).all()
    assert np.abs(input_column("deep16.png") - input_column("grey.jpg")).mean() < 3
    assert np.abs(input_column("rotated.jpg") - input_column("photo.bmp")).mean() < 6
    assert np.abs(input_column("photo.webp") - input_column("photo.bmp")).max() == 0
    assert np.abs(input_column("cmyk.jpg") - input_column("photo.bmp")).mean() < 6


def test_unreadable_files_are_skipped(official_pt: Path, photos: Path, celeba_sample: Path, tmp_path: Path,
                                      capsys):
    broken = write_broken_inputs(photos, sorted((celeba_sample / "images").glob("*.jpg"))[0])
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                       "--attrs", "Male", "--batch-size", "2")
    assert status == 1
    error = capsys.readouterr().err
    assert "3 of 7 inputs failed" in error
    for name in broken:
        assert name in error
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(Path(f["input"]).name for f in summary["failures"]) == broken
    assert summary["num_translated"] == 4
    assert any("empty file" in f["error"] for f in summary["failures"])
    assert any("truncated" in f["error"] for f in summary["failures"])
    for file in sorted(photos.glob("0*.jpg")):
        assert (out / file.stem / "Male.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--attrs", "Blonde_Hair"], "did you mean Blond_Hair"),
    (["--attrs", "Black_Hair,Brown_Hair"], "one-of-N"),
    (["--expressions", "happy"], "categorical expressions"),
    (["--mode", "combos", "--hair", "Red_Hair"], "unknown CelebA label 'Red_Hair'"),
    (["--attrs", "Male", "--image-size", "128"], "trained at 32 px but 128 px was requested"),
    (["--attrs", "Male", "--source-attrs", "Bald"], "--source-attrs: unknown CelebA label 'Bald'"),
    (["--attrs", "Male", "--batch-size", "0"], "--batch-size must be positive"),
    ([], "no target given"),
])
def test_invalid_request_fails_before_work(official_pt: Path, photos: Path, tmp_path: Path, capsys, args, message):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out), *args)
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert message in error
    assert len(error.splitlines()) == 1
    assert not out.exists()


def test_missing_input_and_checkpoint(official_pt: Path, tmp_path: Path, capsys):
    assert translate("--checkpoint", str(official_pt), "--input", str(tmp_path / "nope"), "--out",
                     str(tmp_path / "out"), "--attrs", "Male") == 2
    assert "input not found" in capsys.readouterr().err
    assert translate("--checkpoint", str(tmp_path / "missing.pt"), "--input", str(tmp_path), "--out",
                     str(tmp_path / "out"), "--attrs", "Male") == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_single_file_input(official_pt: Path, photos: Path, tmp_path: Path):
    file = sorted(photos.iterdir())[0]
    out = tmp_path / "out"
    assert translate("--checkpoint", str(official_pt), "--input", str(file), "--out", str(out),
                     "--attrs", "Young=0") == 0
    assert sorted(p.name for p in (out / file.stem).iterdir()) == ["Young=0.png", "grid.png"]


def test_colliding_stems_get_distinct_folders(official_pt: Path, celeba_sample: Path, tmp_path: Path):
    face = load_rgb(sorted((celeba_sample / "images").glob("*.jpg"))[0])
    for name in ("x.jpg", "x.png", "a/x.jpg", "b/x.jpg"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        face.save(tmp_path / "in" / name)
    out = tmp_path / "out"
    assert translate("--checkpoint", str(official_pt), "--input", str(tmp_path / "in"), "--out", str(out),
                     "--attrs", "Male") == 0
    for key in ("x_jpg", "x_png", "a/x", "b/x"):
        assert (out / key / "Male.png").is_file()


def test_output_inside_input_is_not_read_again(official_pt: Path, photos: Path):
    out = photos / "translated"
    for _ in range(2):
        assert translate("--checkpoint", str(official_pt), "--input", str(photos), "--out", str(out),
                         "--attrs", "Male") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_inputs"] == 4


def test_batch_size_does_not_change_outputs(joint_run: Path, photos: Path, tmp_path: Path):
    for batch in ("1", "3"):
        assert translate("--checkpoint", str(joint_run), "--input", str(photos), "--out", str(tmp_path / batch),
                         "--mode", "single", "--batch-size", batch, "--device", "cpu") == 0
    files = sorted(p.relative_to(tmp_path / "1") for p in (tmp_path / "1").rglob("*.png"))
    assert files == sorted(p.relative_to(tmp_path / "3") for p in (tmp_path / "3").rglob("*.png"))
    batch_of_one = np.stack([read_png(tmp_path / "1" / f) for f in files if f.name != "grid.png"]).astype(int)
    batch_of_three = np.stack([read_png(tmp_path / "3" / f) for f in files if f.name != "grid.png"]).astype(int)
    # oneDNN may use another convolution algorithm per batch size, so a value near a rounding boundary can move 1 level.
    assert np.abs(batch_of_one - batch_of_three).max() <= 1
    assert (batch_of_one != batch_of_three).mean() < 1e-3


def test_help_lists_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--attrs", "--mode", "--expressions", "--hair", "--source-attrs", "--no-crop", "--batch-size",
                   "H+G+A", "Name=0"):
        assert option in text


@pytest.mark.slow
def test_entry_point_exit_status(official_pt: Path, photos: Path, tmp_path: Path):
    (photos / "empty.png").write_bytes(b"")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "stargan"), "translate", "--checkpoint", str(official_pt), "--input",
         str(photos), "--out", str(tmp_path / "out"), "--attrs", "Male"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120,
    )
    assert result.returncode == 1
    assert "1 of 5 inputs failed" in result.stderr
    assert "empty.png" in result.stderr


@pytest.fixture(scope="module")
def prepared_celeba(tmp_path_factory, celeba_sample: Path) -> Path:
    """Real CelebA sample prepared by `stargan prepare celeba` at 32 px, with a 10-image test split."""
    folder = tmp_path_factory.mktemp("prepared")
    params = folder / "params.yaml"
    params.write_text("")
    status = main(["prepare", "celeba", "--params", str(params), "--set", "model.d_repeat_num=3",
                   "--image-dir", str(celeba_sample / "images"),
                   "--attr-file", str(celeba_sample / "list_attr_celeba.txt"),
                   "--out", str(folder / "celeba"), "--image-size", "32", "--test-size", "10", "--workers", "1"])
    assert status == 0
    return folder / "celeba"


def write_prepared(folder: Path, dataset: str, size: int) -> Path:
    """Write a two-image prepared folder in the format of `stargan prepare` (images.npy, labels.csv, manifest.json)."""
    folder.mkdir(parents=True)
    np.save(folder / "images.npy", np.full((2, size, size, 3), 100, dtype=np.uint8))
    if dataset == "celeba":
        rows = ["file,split,Black_Hair,Blond_Hair,Brown_Hair,Male,Young",
                "a.jpg,test,1,0,0,0,1",
                "b.jpg,test,0,0,1,1,0"]
    else:
        rows = ["file,split,expression,person", "a.jpg,test,happy,1", "b.jpg,test,sad,2"]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    (folder / "manifest.json").write_text(json.dumps({"dataset": dataset, "image_size": size}))
    return folder


def test_prepared_split_uses_real_labels(official_pt: Path, prepared_celeba: Path, celeba_sample: Path,
                                         tmp_path: Path):
    out = tmp_path / "out"
    status = translate("--checkpoint", str(official_pt), "--prepared", str(prepared_celeba), "--split", "test",
                       "--mode", "single", "--out", str(out))
    assert status == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_translated"] == 10
    assert summary["split"] == "test"
    table = {row.split(",")[0]: row.split(",") for row in (prepared_celeba / "labels.csv").read_text().splitlines()}
    for record in summary["inputs"]:
        row = table[record["input"]]
        assert row[1] == "test"
        assert record["source_label"] == [float(v) for v in row[2:]]
        assert read_png(out / record["outputs"]["Male=flip"]).shape == (32, 32, 3)
    first = summary["inputs"][0]
    grid = read_png(out / first["grid"])
    photo = load_rgb(celeba_sample / "images" / first["input"])
    assert np.array_equal(grid[-34:-2, 2:34], np.asarray(center_crop_resize(photo, 178, 32)))


def test_prepared_matches_photo_translation(official_pt: Path, prepared_celeba: Path, celeba_sample: Path,
                                            tmp_path: Path):
    """A photo translated from --input with its real label gives the prepared-split output."""
    summary_path = tmp_path / "prepared" / "summary.json"
    assert translate("--checkpoint", str(official_pt), "--prepared", str(prepared_celeba), "--out",
                     str(summary_path.parent), "--attrs", "Blond_Hair") == 0
    record = json.loads(summary_path.read_text())["inputs"][0]
    names = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young")
    source = ",".join(f"{n}={int(v)}" for n, v in zip(names, record["source_label"]))
    assert translate("--checkpoint", str(official_pt), "--input", str(celeba_sample / "images" / record["input"]),
                     "--out", str(tmp_path / "photo"), "--attrs", "Blond_Hair", "--source-attrs", source) == 0
    from_photo = read_png(tmp_path / "photo" / Path(record["input"]).stem / "Blond_Hair.png")
    assert np.array_equal(from_photo, read_png(tmp_path / "prepared" / record["outputs"]["Blond_Hair"]))


@pytest.mark.parametrize("dataset, size, args, message", [
    ("celeba", 64, ["--mode", "single"], "contains 64 px images but"),
    ("rafd", 32, ["--mode", "single"], "source dataset 'RaFD' is not in the checkpoint's labels"),
    ("celeba", 32, ["--mode", "single", "--source-attrs", "Male"], "--source-attrs does not apply to --prepared"),
    ("other", 32, ["--mode", "single"], "names dataset 'other'"),
])
def test_prepared_invalid_requests(official_pt: Path, tmp_path: Path, capsys, dataset, size, args, message):
    folder = write_prepared(tmp_path / "prepared", dataset, size)
    out = tmp_path / "out"
    assert translate("--checkpoint", str(official_pt), "--prepared", str(folder), "--out", str(out), *args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_prepared_rafd_on_joint_model(joint_run: Path, tmp_path: Path):
    folder = write_prepared(tmp_path / "prepared", "rafd", 32)
    out = tmp_path / "out"
    assert translate("--checkpoint", str(joint_run), "--prepared", str(folder), "--out", str(out),
                     "--mode", "expressions") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source_dataset"] == "RaFD"
    assert summary["inputs"][0]["source_label"] == [0, 0, 0, 0, 1, 0, 0, 0]
    assert (out / "a" / "happy.png").is_file()
