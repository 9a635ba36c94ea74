"""The exported image SavedModel: same scores as the Keras model, the documented signatures,
the documented answer to each bad request, and the export CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import keras_scores, reference_image_spec
from tests.serving.conftest import IMAGE_SIZE, TOP_K, encode, random_image
from tests.test_cli import run_cli

# Same ops on the same float32 inputs, traced into different graphs: the scores (σ of the
# logits, in [0, 1]) agree to float32 rounding. Measured: max difference ≤ 1e-6.
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def keras_model(image_workdir):
    import keras

    from cma_tf.training import workdir as files

    return keras.saving.load_model(files.trained_model_path(image_workdir))


@pytest.fixture(scope="module")
def loaded(image_export):
    return tf.saved_model.load(image_export)


def val_records(data_dir):
    """`(encoded images, label ids)` of the val split, parsed with the reference spec."""
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, "val-*.tfrecord")))
    encoded = []
    for record in tf.data.TFRecordDataset(files):
        encoded.append(tf.io.parse_single_example(record, reference_image_spec())["image/encoded"].numpy())
    return encoded


def test_serving_default_equals_keras_on_the_evaluation_pipeline(image_data, keras_model, loaded):
    """The bytes signature decodes and resizes in the graph exactly as evaluation does: its
    scores on each val image equal the Keras model's on the evaluation dataset's pixels."""
    from cma_tf.data.images import make_image_dataset

    pixels = []
    for shard in sorted(tf.io.gfile.glob(os.path.join(image_data, "val-*.tfrecord"))):  # one by one: record order
        dataset = make_image_dataset([shard], num_classes=16, image_size=IMAGE_SIZE, batch_size=64, training=False)
        pixels.extend(batch[0].numpy() for batch in dataset)
    pixels = np.concatenate(pixels)
    encoded = val_records(image_data)
    outputs = loaded.signatures["serving_default"](images=tf.constant(encoded))
    assert outputs["valid"].numpy().all()
    np.testing.assert_allclose(outputs["scores"].numpy(), keras_scores(keras_model, pixels), atol=SCORE_TOLERANCE)


def test_decoding_matches_an_independent_png_decoder(loaded, keras_model):
    """PNG bytes in the graph vs PIL's decoding + bilinear resize (half-pixel centres, as
    `tf.image.resize`) into the Keras model; JPEG and PNG of the same pixels also agree."""
    from PIL import Image
    import io

    rng = np.random.default_rng(1)
    images = [random_image(rng) for _ in range(4)]
    png = [encode(image, "PNG") for image in images]
    decoded = [np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) for data in png]
    pixels = np.stack([tf.image.resize(image, [IMAGE_SIZE, IMAGE_SIZE], method="bilinear").numpy() for image in decoded])
    outputs = loaded.signatures["serving_default"](images=tf.constant(png))
    np.testing.assert_allclose(outputs["scores"].numpy(), keras_scores(keras_model, pixels), atol=SCORE_TOLERANCE)
    tensor = loaded.signatures["predict_pixels"](pixels=tf.constant(pixels, tf.float32))
    np.testing.assert_allclose(tensor["scores"].numpy(), outputs["scores"].numpy(), atol=SCORE_TOLERANCE)


def test_top_k_are_the_best_scores_with_their_vocabulary_names(image_export, loaded):
    rng = np.random.default_rng(2)
    outputs = loaded.signatures["serving_default"](images=tf.constant([encode(random_image(rng), "JPEG") for _ in range(5)]))
    with open(os.path.join(image_export, "assets", "labels.txt")) as f:
        vocabulary = f.read().splitlines()
    scores = outputs["scores"].numpy()
    classes = outputs["top_k_classes"].numpy()
    assert classes.shape == (5, TOP_K)
    np.testing.assert_array_equal(classes, np.argsort(-scores, axis=1, kind="stable")[:, :TOP_K])
    np.testing.assert_allclose(outputs["top_k_scores"].numpy(), np.take_along_axis(scores, classes, axis=1))
    labels = outputs["top_k_labels"].numpy().astype(str)
    np.testing.assert_array_equal(labels, np.asarray(vocabulary)[classes])


def test_a_bad_image_is_flagged_and_does_not_change_the_others(loaded):
    """Per-item flags: undecodable items get valid=False, scores 0, classes −1, labels "";
    the good items' results are those of a batch without the bad ones."""
    rng = np.random.default_rng(3)
    png = encode(random_image(rng), "PNG")
    jpeg = encode(random_image(rng), "JPEG")
    bad = [b"not an image", b"", png[: len(png) // 2], jpeg[: len(jpeg) // 2]]
    batch = [bad[0], png, bad[1], jpeg, bad[2], bad[3]]
    signature = loaded.signatures["serving_default"]
    outputs = signature(images=tf.constant(batch))
    alone = signature(images=tf.constant([png, jpeg]))
    np.testing.assert_array_equal(outputs["valid"].numpy(), [False, True, False, True, False, False])
    good = [1, 3]
    np.testing.assert_allclose(outputs["scores"].numpy()[good], alone["scores"].numpy(), atol=1e-6)
    np.testing.assert_array_equal(outputs["top_k_labels"].numpy()[good], alone["top_k_labels"].numpy())
    flagged = [0, 2, 4, 5]
    assert (outputs["scores"].numpy()[flagged] == 0).all()
    assert (outputs["top_k_classes"].numpy()[flagged] == -1).all()
    assert (outputs["top_k_labels"].numpy()[flagged] == b"").all()


def test_a_batch_of_only_bad_images_is_all_flagged(loaded):
    outputs = loaded.signatures["serving_default"](images=tf.constant([b"junk", b"more junk"]))
    np.testing.assert_array_equal(outputs["valid"].numpy(), [False, False])
    assert outputs["scores"].shape == (2, 16)


@pytest.mark.parametrize("signature, inputs", [
    ("serving_default", {"images": tf.constant([], tf.string)}),
    ("predict_pixels", {"pixels": tf.zeros([0, IMAGE_SIZE, IMAGE_SIZE, 3])}),
])
def test_an_empty_batch_is_an_invalid_argument(loaded, signature, inputs):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
        loaded.signatures[signature](**inputs)


def test_a_wrong_dtype_or_shape_is_refused_by_the_signature(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match="string"):
        loaded.signatures["serving_default"](images=tf.constant([1.0, 2.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match=rf"pixels must be \[batch, {IMAGE_SIZE}, {IMAGE_SIZE}, 3\]"):
        loaded.signatures["predict_pixels"](pixels=tf.zeros([1, IMAGE_SIZE + 1, IMAGE_SIZE, 3]))


def test_saved_model_cli_lists_the_documented_signatures(image_export):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run(
        [cli, "show", "--dir", image_export, "--all"], capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    for signature in ("serving_default", "predict_pixels"):
        assert f"signature_def['{signature}']" in text
    assert "inputs['images'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in text
    assert f"inputs['pixels'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)" in text
    for output, dtype in [("scores", "DT_FLOAT"), ("top_k_classes", "DT_INT32"), ("top_k_labels", "DT_STRING"),
                          ("top_k_scores", "DT_FLOAT"), ("valid", "DT_BOOL")]:
        assert f"outputs['{output}'] tensor_info:\n        dtype: {dtype}" in text
    assert text.count("outputs['valid']") == 1  # serving_default only


def test_the_vocabulary_ships_as_an_asset(image_export, image_workdir):
    with open(os.path.join(image_export, "assets", "labels.txt")) as f, open(os.path.join(image_workdir, "labels.txt")) as g:
        assert f.read() == g.read()
    assert os.path.exists(os.path.join(image_export, "assets.extra", "cma_tf.json"))


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_export_cli_writes_a_version_and_refuses_to_overwrite_it(image_workdir, tmp_path):
    export_dir = str(tmp_path / "cma" / "7")
    result = run_cli("cma_tf.export", f"--workdir={image_workdir}", f"--export_dir={export_dir}", "--top_k=2")
    assert result.returncode == 0, result.stderr
    assert "serving_default(images: string [-1])" in result.stdout
    assert "top_k_labels: string [-1,2]" in result.stdout
    assert os.listdir(tmp_path / "cma") == ["7"]  # no temporary folder left behind
    again = run_cli("cma_tf.export", f"--workdir={image_workdir}", f"--export_dir={export_dir}")
    assert again.returncode == 2
    assert again.stderr.strip().splitlines()[-1] == f"error: {export_dir} exists: choose a new version number or pass --overwrite"


def test_export_cli_names_a_missing_workdir(tmp_path):
    result = run_cli("cma_tf.export", f"--workdir={tmp_path}/nothing", f"--export_dir={tmp_path}/m/1")
    assert result.returncode == 2
    assert "is not a training workdir: config.json is missing" in result.stderr
    assert "Traceback" not in result.stderr


def test_saved_model_loads_without_cma_tf(image_export):
    """TF Serving has no Python: the SavedModel must run with TensorFlow alone (an import of
    cma_tf fails in that process)."""
    code = (
        "import sys; sys.modules['cma_tf'] = None; import tensorflow as tf;"
        f"f = tf.saved_model.load({image_export!r}).signatures['serving_default'];"
        "print(f(images=tf.constant([b'x']))['valid'].numpy())"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[False]"


def test_the_export_is_readable_by_other_users(image_export):
    """`mkdtemp` makes 0700 folders; a model server running as another user must read the version."""
    umask = os.umask(0)
    os.umask(umask)
    for directory, _, names in os.walk(image_export):
        assert os.stat(directory).st_mode & 0o777 == 0o777 & ~umask, directory
        for name in names:
            assert os.stat(os.path.join(directory, name)).st_mode & 0o777 == 0o666 & ~umask, name


def test_overwrite_replaces_a_version_only_once_the_new_one_is_written(image_workdir, tmp_path, monkeypatch):
    from cma_tf.serving.saved_model import export_workdir

    export_dir = str(tmp_path / "m" / "1")
    export_workdir(image_workdir, export_dir, top_k=2)

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_workdir(image_workdir, export_dir, top_k=4, overwrite=True)
    assert tf.saved_model.load(export_dir).signatures["serving_default"].structured_outputs["top_k_classes"].shape[-1] == 2
    monkeypatch.undo()
    export_workdir(image_workdir, export_dir, top_k=4, overwrite=True)
    assert tf.saved_model.load(export_dir).signatures["serving_default"].structured_outputs["top_k_classes"].shape[-1] == 4
    assert os.listdir(tmp_path / "m") == ["1"]


def test_vocabulary_files_are_validated(image_workdir, tmp_path):
    from cma_tf.errors import DataError
    from cma_tf.serving.saved_model import export_workdir

    names = open(os.path.join(image_workdir, "labels.txt")).read().splitlines()
    good = tmp_path / "names.txt"
    good.write_text("".join(f"{name}\n" for name in names) + "\n\n")  # trailing blank lines are fine
    info = export_workdir(image_workdir, str(tmp_path / "a" / "1"), vocabulary_file=str(good))
    with open(tmp_path / "a" / "1" / "assets" / "labels.txt") as f:
        assert f.read().splitlines() == names
    assert info["num_classes"] == len(names)
    csv_file = tmp_path / "vocabulary.csv"  # the YouTube-8M format is read as such
    csv_file.write_text("Index,TrainVideoCount,Name\n" + "".join(f"{i},5,{name}\n" for i, name in enumerate(names)))
    export_workdir(image_workdir, str(tmp_path / "b" / "1"), vocabulary_file=str(csv_file))
    with open(tmp_path / "b" / "1" / "assets" / "labels.txt") as f:
        assert f.read().splitlines() == names
    gap = tmp_path / "gap.txt"
    gap.write_text("a\n\nb\n")
    with pytest.raises(DataError, match=f"{gap}: line 2 is empty"):
        export_workdir(image_workdir, str(tmp_path / "c" / "1"), vocabulary_file=str(gap))
    renamed = tmp_path / "renamed.txt"  # --vocabulary does not rename the run's labels
    renamed.write_text("".join(f"renamed {name}\n" for name in names))
    with pytest.raises(DataError, match=rf"at id 0 \(line 1\): 'renamed {names[0]}' instead of '{names[0]}'"):
        export_workdir(image_workdir, str(tmp_path / "d" / "1"), vocabulary_file=str(renamed))
    short = tmp_path / "short.txt"
    short.write_text("".join(f"{name}\n" for name in names[:2]))
    with pytest.raises(DataError, match=r"at id 2 \(line 3\): the end of the list \(2 labels\) instead of"):
        export_workdir(image_workdir, str(tmp_path / "e" / "1"), vocabulary_file=str(short))
    assert sorted(os.listdir(tmp_path)) == ["a", "b", "gap.txt", "names.txt", "renamed.txt", "short.txt", "vocabulary.csv"]


def test_a_run_without_labels_txt_checks_the_count_of_a_given_vocabulary(image_workdir, image_data, tmp_path):
    """A run trained before labels.txt was kept, whose dataset is gone: --vocabulary supplies the
    names; only the model's class count can be checked."""
    import shutil

    from cma_tf.errors import DataError
    from cma_tf.serving.saved_model import export_workdir
    from cma_tf.training import workdir as files

    workdir = str(tmp_path / "old_run")
    shutil.copytree(image_workdir, workdir)
    os.remove(os.path.join(workdir, "labels.txt"))
    config = files.read_json(os.path.join(workdir, "config.json"))
    config["data"]["data_dir"] = str(tmp_path / "gone")
    files.write_json(os.path.join(workdir, "config.json"), config)
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    with pytest.raises(DataError, match=r"scores \d+ classes but the vocabulary has 2 names"):
        export_workdir(workdir, str(tmp_path / "d" / "1"), vocabulary_file=str(short))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_exports_float32_scores(image_data, tmp_path, policy):
    import keras

    from cma_tf import factory
    from cma_tf.serving.saved_model import export_saved_model
    from tests.test_cli import tiny_config

    config = tiny_config("cma", image_data)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = factory.build_classifier(config, 16)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    export_dir = str(tmp_path / "m" / "1")
    export_saved_model(model, [f"l{i}" for i in range(16)], factory.serving_request(config), export_dir)
    pixels = np.random.default_rng(0).uniform(0, 255, [2, IMAGE_SIZE, IMAGE_SIZE, 3]).astype(np.float32)
    outputs = tf.saved_model.load(export_dir).signatures["predict_pixels"](pixels=tf.constant(pixels))
    assert outputs["scores"].dtype == tf.float32
    np.testing.assert_allclose(outputs["scores"].numpy(), keras_scores(model, pixels), atol=SCORE_TOLERANCE)


def _tree(folder):
    """`{relative path: bytes}` of every file below `folder`."""
    tree = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                tree[os.path.relpath(path, folder)] = f.read()
    return tree


@pytest.fixture
def base_folder(image_export, tmp_path):
    """A model base folder: versions 1 and 2 (copies of the session's export) and a notes file."""
    import shutil

    base = tmp_path / "models" / "tiny"
    shutil.copytree(image_export, base / "1")
    shutil.copytree(image_export, base / "2")
    (base / "NOTES.md").write_text("version 2: the tiny run\n")
    return base


def test_overwrite_replaces_one_version_and_keeps_the_others_and_the_notes(image_workdir, base_folder):
    from cma_tf.serving.saved_model import export_workdir

    kept = {name: _tree(base_folder / name) for name in ("1",)}
    export_workdir(image_workdir, str(base_folder / "2"), top_k=2, overwrite=True)
    assert sorted(os.listdir(base_folder)) == ["1", "2", "NOTES.md"]
    assert _tree(base_folder / "1") == kept["1"]
    assert (base_folder / "NOTES.md").read_text() == "version 2: the tiny run\n"
    loaded = tf.saved_model.load(str(base_folder / "2"))
    assert loaded.signatures["serving_default"].structured_outputs["top_k_classes"].shape[-1] == 2


def test_overwrite_of_a_base_folder_is_refused_naming_the_version(image_workdir, base_folder):
    from cma_tf.serving.saved_model import export_workdir

    before = _tree(base_folder)
    with pytest.raises(FileExistsError) as error:
        export_workdir(image_workdir, str(base_folder), overwrite=True)
    message = str(error.value)
    assert f"{base_folder} is not a SavedModel version folder" in message, message
    assert f"--export_dir={base_folder}/2" in message and f"--export_dir={base_folder}/3" in message, message
    assert _tree(base_folder) == before


def test_export_cli_refuses_a_base_folder_in_one_line(image_workdir, base_folder):
    import subprocess
    import sys

    from tests.test_cli import ROOT

    before = _tree(base_folder)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "cma_tf.export", f"--workdir={image_workdir}", f"--export_dir={base_folder}", "--overwrite"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr and "is not a SavedModel version folder" in errors[0]
    assert _tree(base_folder) == before
