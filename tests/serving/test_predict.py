"""`python -m cma_tf.predict`: what it reads, what it writes, and its errors."""

import csv
import io
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import reference_image_spec
from tests.serving.conftest import IMAGE_SIZE, TOP_K, encode, random_image
from tests.test_cli import run_cli


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """3 JPEGs and 2 PNGs in nested folders, a file that is not an image, and a text file that
    the folder scan skips (not an image extension)."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    (folder / "sub").mkdir()
    for i in range(3):
        (folder / f"a{i}.jpg").write_bytes(encode(random_image(rng), "JPEG"))
    for i in range(2):
        (folder / "sub" / f"b{i}.PNG").write_bytes(encode(random_image(rng), "PNG"))
    (folder / "sub" / "broken.png").write_bytes(b"\x89PNG but not really")
    (folder / "notes.txt").write_text("not scanned")
    return str(folder)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_a_folder_with_a_saved_model_gives_the_signature_top_k(photo_folder, image_export, tmp_path):
    from PIL import Image

    output = str(tmp_path / "out.csv")
    result = run_cli("cma_tf.predict", f"--model={image_export}", f"--input={photo_folder}", f"--output={output}",
                     "--batch_size=2")
    assert result.returncode == 0, result.stderr
    rows = read_csv(output)
    assert [os.path.relpath(row["id"], photo_folder) for row in rows] == [
        "a0.jpg", "a1.jpg", "a2.jpg", "sub/b0.PNG", "sub/b1.PNG", "sub/broken.png"
    ]
    assert list(rows[0]) == ["id", "valid"] + [
        f"{kind}_{rank}" for rank in range(1, TOP_K + 1) for kind in ("label", "score")
    ] + ["predicted"]
    assert [row["valid"] for row in rows] == ["1"] * 5 + ["0"]
    assert rows[-1]["label_1"] == "" and rows[-1]["score_1"] == ""
    assert "1 items did not decode" in result.stderr and "broken.png" in result.stderr
    # The same images through the loaded signature in this process, one call for all.
    signature = tf.saved_model.load(image_export).signatures["serving_default"]
    paths = [row["id"] for row in rows[:5]]
    expected = signature(images=tf.constant([open(p, "rb").read() for p in paths]))
    vocabulary = [line.strip() for line in open(os.path.join(image_export, "assets", "labels.txt"))]
    for row, labels, scores, all_scores in zip(
        rows, expected["top_k_labels"].numpy(), expected["top_k_scores"].numpy(), expected["scores"].numpy()
    ):
        assert [row[f"label_{r}"] for r in range(1, TOP_K + 1)] == [label.decode() for label in labels]
        np.testing.assert_allclose([float(row[f"score_{r}"]) for r in range(1, TOP_K + 1)], scores, atol=1e-6)
        # no calibrated thresholds in this run: the decisions are the scores ≥ 0.5, by name
        assert (row["predicted"].split(";") if row["predicted"] else []) == [
            name for name, score in zip(vocabulary, all_scores) if score >= 0.5
        ]
    assert rows[-1]["predicted"] == ""
    # And the PNGs, decoded independently (PIL + bilinear resize), through the pixel signature.
    png = np.stack([
        tf.image.resize(np.asarray(Image.open(p).convert("RGB")), [IMAGE_SIZE, IMAGE_SIZE]).numpy() for p in paths[3:]
    ])
    pixels = tf.saved_model.load(image_export).signatures["predict_pixels"](pixels=tf.constant(png))
    assert [row["label_1"] for row in rows[3:5]] == [label.decode() for label in pixels["top_k_labels"].numpy()[:, 0]]


def test_every_format_the_converter_reads_is_scored_and_a_bad_file_is_flagged_with_its_reason(image_export, tmp_path):
    """A folder of one picture as PNG, TIFF, WebP and BMP, an empty file and a broken TIFF: the
    folder scan finds them all, the four copies score alike, the two bad files are flagged
    with the reason in words; an explicit .tiff path is scored too."""
    from PIL import Image

    from cma_tf.serving.batch_predict import predict

    folder = tmp_path / "photos"
    folder.mkdir()
    picture = random_image(np.random.default_rng(3), 40, 40)
    for name, image_format, options in [("a.png", "PNG", {}), ("b.tiff", "TIFF", {}), ("c.TIF", "TIFF", {}),
                                        ("d.webp", "WEBP", {"lossless": True}), ("e.bmp", "BMP", {})]:
        Image.fromarray(picture).save(folder / name, format=image_format, **options)
    (folder / "f_empty.png").write_bytes(b"")
    (folder / "g_broken.tiff").write_bytes(b"II*\x00 and nothing a TIFF needs")
    output = str(tmp_path / "out.jsonl")
    summary = predict(image_export, [str(folder)], output, progress=False)
    with open(output) as f:
        rows = [json.loads(line) for line in f]
    assert [os.path.basename(row["id"]) for row in rows] == [
        "a.png", "b.tiff", "c.TIF", "d.webp", "e.bmp", "f_empty.png", "g_broken.tiff"]
    assert [row["valid"] for row in rows] == [True] * 5 + [False] * 2
    for row in rows[1:5]:
        assert row["labels"] == rows[0]["labels"], row["id"]
        np.testing.assert_allclose(row["scores"], rows[0]["scores"], atol=1e-6)
    assert summary["flagged"] == [
        f"{folder / 'f_empty.png'} (empty file (0 bytes))",
        f"{folder / 'g_broken.tiff'} (TIFF header, but PIL cannot read the file (damaged, or a TIFF variant it "
        "does not read))",
    ]
    explicit = predict(image_export, [str(folder / "b.tiff")], str(tmp_path / "one.jsonl"), progress=False)
    with open(tmp_path / "one.jsonl") as f:
        (row,) = [json.loads(line) for line in f]
    assert explicit["flagged"] == [] and row["valid"] and row["labels"] == rows[0]["labels"]


@pytest.mark.slow
def test_records_from_a_workdir_and_from_its_export_agree(image_data, image_workdir, image_export, tmp_path):
    pattern = os.path.join(image_data, "val-*.tfrecord")
    outputs = {}
    for name, model in [("workdir", image_workdir), ("export", image_export)]:
        output = str(tmp_path / f"{name}.jsonl")
        result = run_cli("cma_tf.predict", f"--model={model}", f"--input={pattern}", f"--output={output}",
                         f"--top_k={TOP_K}", "--noprogress")
        assert result.returncode == 0, result.stderr
        with open(output) as f:
            outputs[name] = [json.loads(line) for line in f]
    workdir, export = outputs["workdir"], outputs["export"]
    ids = []
    for shard in sorted(tf.io.gfile.glob(pattern)):
        for record in tf.data.TFRecordDataset(shard):
            ids.append(tf.io.parse_single_example(record, reference_image_spec())["image/source_id"].numpy().decode())
    assert [row["id"] for row in workdir] == ids == [row["id"] for row in export]
    for a, b in zip(workdir, export):
        assert a["valid"] and a["labels"] == b["labels"] and a["classes"] == b["classes"]
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6)
    assert not [name for name in os.listdir(tmp_path) if ".tmp" in name]


def test_video_records_are_scored_with_their_ids(tmp_path):
    from cma_tf import factory
    from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
    from cma_tf.serving.batch_predict import predict
    from cma_tf.serving.saved_model import export_saved_model
    from tests.serving.test_video_export import video_config

    data = str(tmp_path / "yt8m")
    write_synthetic_yt8m(data, num_classes=8, train_videos=4, validate_videos=6, test_videos=3, num_shards=1,
                         min_frames=5, max_frames=20, seed=1)
    config = video_config("yt8m_frame", data)
    export_dir = str(tmp_path / "video" / "1")
    export_saved_model(factory.build_classifier(config, 8), [f"c{i}" for i in range(8)],
                       factory.serving_request(config), export_dir, top_k=2)
    output = str(tmp_path / "video.csv")
    summary = predict(export_dir, [os.path.join(data, "frame", "test*.tfrecord")], output, batch_size=2, progress=False)
    rows = read_csv(output)
    ids = [tf.io.parse_single_sequence_example(r, {"id": tf.io.FixedLenFeature([], tf.string)})[0]["id"].numpy().decode()
           for r in tf.data.TFRecordDataset(tf.io.gfile.glob(os.path.join(data, "frame", "test*.tfrecord")))]
    assert [row["id"] for row in rows] == ids and summary["items"] == 3 and summary["flagged"] == []
    assert all(row["label_1"].startswith("c") for row in rows)
    with pytest.raises(ValueError, match="reads YouTube-8M records"):
        predict(export_dir, [__file__], str(tmp_path / "x.csv"), progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"inputs": ["{missing}"]}, "--input {missing}: no such file"),
    ({"inputs": ["{tmp}/*.jpg"]}, "--input {tmp}/*.jpg: nothing matches the pattern"),
    ({"output": "{tmp}/out.txt"}, "name it .csv or .jsonl"),
    ({"top_k": 9}, f"--top_k=9 but {{model}} returns its top {TOP_K} labels"),
    ({"model": "{tmp}"}, "is neither a SavedModel (no saved_model.pb) nor a training workdir (no config.json)"),
    ({"top_k": 0}, "--top_k must be at least 1, got 0"),
    ({"batch_size": 0}, "--batch_size must be at least 1, got 0"),
])
def test_mistakes_are_user_errors_naming_the_flag(image_export, photo_folder, tmp_path, changes, message):
    from cma_tf.cli import USER_ERRORS
    from cma_tf.serving.batch_predict import predict

    values = {"missing": str(tmp_path / "missing.jpg"), "tmp": str(tmp_path), "model": image_export}
    arguments = {"model": image_export, "inputs": [photo_folder], "output": str(tmp_path / "out.csv"), "progress": False}
    for key, value in changes.items():
        arguments[key] = [v.format(**values) for v in value] if isinstance(value, list) else (
            value.format(**values) if isinstance(value, str) else value)
    with pytest.raises(USER_ERRORS) as error:
        predict(**arguments)
    assert message.format(**values) in str(error.value)
    assert not os.path.exists(tmp_path / "out.csv")


def test_the_cli_reports_a_mistake_in_one_line(image_export, tmp_path):
    result = run_cli("cma_tf.predict", f"--model={image_export}", f"--input={tmp_path}/missing.jpg",
                     f"--output={tmp_path}/out.csv")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: --input {tmp_path}/missing.jpg: no such file"
    assert "Traceback" not in result.stderr


def test_writer_formats(tmp_path):
    """The CSV and JSONL rows of a batch with an invalid item, read back with csv/json."""
    from cma_tf.serving.predictions import PredictionWriter

    outputs = {
        "valid": np.array([True, False]),
        "top_k_labels": np.array([[b"dog, brown", b"caf\xc3\xa9"], [b"", b""]], dtype=object),
        "top_k_scores": np.array([[0.9, 0.25], [0.0, 0.0]], np.float32),
        "top_k_classes": np.array([[3, 1], [-1, -1]], np.int32),
        "predicted_labels": np.array([b"dog, brown;caf\xc3\xa9", b""], dtype=object),
    }
    with PredictionWriter(str(tmp_path / "p.csv"), 2) as writer:
        writer.write(["x.jpg", "y.jpg"], outputs)
    rows = list(csv.reader(io.StringIO((tmp_path / "p.csv").read_text())))
    assert rows[1] == ["x.jpg", "1", "dog, brown", "0.900000", "café", "0.250000", "dog, brown;café"]
    assert rows[2] == ["y.jpg", "0", "", "", "", "", ""]
    with PredictionWriter(str(tmp_path / "p.jsonl"), 1) as writer:
        writer.write(["x.jpg", "y.jpg"], outputs)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert lines[0] == {"id": "x.jpg", "valid": True, "labels": ["dog, brown"], "scores": [pytest.approx(0.9)],
                        "classes": [3], "predicted": ["dog, brown", "café"]}
    assert lines[1] == {"id": "y.jpg", "valid": False, "labels": [], "scores": [], "classes": [], "predicted": []}
    # outputs of a SavedModel exported before `predicted` existed: no decisions, nothing else changes
    del outputs["predicted_labels"]
    with PredictionWriter(str(tmp_path / "old.jsonl"), 1) as writer:
        writer.write(["x.jpg"], outputs)
    assert json.loads((tmp_path / "old.jsonl").read_text())["predicted"] == []


def test_a_folder_of_records_and_a_workdir_with_its_own_vocabulary_given(image_data, image_workdir, tmp_path):
    """`--vocabulary` may repeat the run's labels (a renamed list is refused: test_vocabulary_order.py)."""
    from cma_tf.serving.batch_predict import predict

    folder = tmp_path / "records"
    folder.mkdir()
    shard = sorted(tf.io.gfile.glob(os.path.join(image_data, "val-*.tfrecord")))[0]
    tf.io.gfile.copy(shard, str(folder / "part.tfrecord"))
    names = open(os.path.join(image_workdir, "labels.txt")).read().splitlines()
    same = tmp_path / "names.txt"
    same.write_text("".join(f"{name}\n" for name in names))
    output = str(tmp_path / "out.jsonl")
    summary = predict(image_workdir, [str(folder)], output, top_k=2, progress=False, vocabulary_file=str(same))
    rows = [json.loads(line) for line in open(output)]
    assert summary["items"] == len(rows) == sum(1 for _ in tf.data.TFRecordDataset(shard))
    assert all(row["valid"] and set(row["labels"]) <= set(names) for row in rows)


def test_a_truncated_record_file_names_the_file_and_leaves_no_output(image_data, image_export, tmp_path):
    from cma_tf.errors import DataError
    from cma_tf.serving.batch_predict import predict

    shard = sorted(tf.io.gfile.glob(os.path.join(image_data, "val-*.tfrecord")))[0]
    data = open(shard, "rb").read()
    broken = tmp_path / "broken.tfrecord"
    broken.write_bytes(data[: len(data) - 100])
    output = tmp_path / "out.csv"
    with pytest.raises(DataError, match=f"{broken}: record \\d+ and on cannot be read .*truncated"):
        predict(image_export, [str(broken)], str(output), batch_size=4, progress=False)
    assert os.listdir(tmp_path) == ["broken.tfrecord"]
