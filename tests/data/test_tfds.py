"""`config.data.format="tfds"`: COCO 2014 and VOC 2007 as TensorFlow Datasets prepares them,
mocked under their real names and feature specs in a temporary directory (`tests/tfds_mock.py`;
nothing is downloaded): labels, vocabulary, the label graph against counts made directly from
the drawn examples, a training dry run, evaluation and an export."""

import importlib.util
import os
import subprocess
import sys
from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.data import images, tfds_records
from cma_tf.errors import ConfigError, DataError
from cma_tf.serving.saved_model import export_saved_model
from cma_tf.training import workdir as files
from cma_tf.training.trainer import load_dataset_info, train_and_evaluate
from tests import tfds_mock
from tests.helpers import keras_scores

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZES = {"train": 40, "validation": 12, "test": 6}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds"))
    return data_dir, {
        "coco": tfds_mock.prepare("coco", data_dir, SIZES, seed=1),
        "voc": tfds_mock.prepare("voc", data_dir, SIZES, seed=2, unlabelled=("test",)),
    }


def tfds_config(kind, data_dir, **data):
    """`configs/<kind>_tfds.py:cma` shrunk to the small backbone, reading the mock in `data_dir`."""
    spec = importlib.util.spec_from_file_location("config_module", os.path.join(REPO, "configs", f"{kind}_tfds.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config("cma")
    config.data.tfds_data_dir = data_dir
    config.data.image_size = 32
    config.data.deterministic = True
    config.model.backbone = "small"
    config.model.backbone_weights = None
    config.model.backbone_widths = (8, 8, 16, 16)
    config.asge.units, config.asge.steps = 8, 20
    config.train.batch_size = config.train.eval_batch_size = 4
    config.train.epochs = 1
    for field, value in data.items():
        config.data[field] = value
    return config


def label_sets(kind_labels, splits):
    """The drawn examples of `splits` as a multiset of their label sets (TFDS shuffles the order)."""
    return Counter(frozenset(labels) for split in splits for labels in kind_labels[split])


def parsed_label_sets(config, split):
    kind = factory.data_kind(config)
    parse = tfds_records.example_parser(*kind.builder_and_field(config))
    found = Counter()
    for serialized in tf.data.TFRecordDataset(factory.list_data_files(config, split)):
        encoded, labels = parse(serialized)
        assert encoded.numpy()[:2] in (b"\xff\xd8", b"\x89P")  # still encoded (JPEG, PNG): our pipeline decodes
        assert len(set(labels.numpy())) == len(labels.numpy())  # each label once
        found[frozenset(labels.numpy().tolist())] += 1
    return found


def test_coco_object_labels_each_once_and_the_names_of_its_class_label(prepared):
    data_dir, drawn = prepared
    config = tfds_config("coco", data_dir)
    factory.validate_config(config)
    assert factory.read_vocabulary(config) == tfds_mock.coco_names()
    assert factory.data_kind(config).label_field(config) == "objects/label"
    assert parsed_label_sets(config, "train") == label_sets(drawn["coco"], ["train"])
    assert any(len(labels) > len(set(labels)) for labels in drawn["coco"]["train"])  # repeats were drawn


def test_voc_image_labels_and_joined_splits(prepared):
    data_dir, drawn = prepared
    config = tfds_config("voc", data_dir)
    assert factory.data_kind(config).label_field(config) == "labels"
    assert factory.read_vocabulary(config) == tfds_mock.voc_names()
    assert config.data.train_split == "train+validation"
    assert len(factory.list_data_files(config, "train+validation")) == 2
    assert parsed_label_sets(config, "train+validation") == label_sets(drawn["voc"], ["train", "validation"])
    config.data.tfds_label_field = "objects/label"
    assert parsed_label_sets(config, "train") == label_sets(drawn["voc"], ["train"])


def test_the_label_graph_counts_what_was_drawn(prepared, tmp_path):
    data_dir, drawn = prepared
    config = tfds_config("coco", data_dir, label_graph=str(tmp_path / "graph.npz"))
    vocabulary, graph = load_dataset_info(config)
    expected = np.zeros((80, 80), np.int64)
    for labels in drawn["coco"]["train"]:
        unique = sorted(set(labels))
        expected[np.ix_(unique, unique)] += 1
    np.testing.assert_array_equal(np.asarray(graph.counts), expected)
    assert graph.num_examples == SIZES["train"] and len(vocabulary) == 80


def test_a_missing_dataset_is_one_line_and_never_a_download(tmp_path):
    empty = str(tmp_path / "nothing")
    with pytest.raises(DataError, match=r"TFDS dataset 'coco/2014' is not prepared in .*nothing/coco/2014/1\.1\.0 .*never downloads"):
        tfds_records.load_builder("coco/2014", empty)
    assert not os.path.exists(empty)
    with pytest.raises(ConfigError, match="config.data.tfds_name='no_such_dataset'"):
        tfds_records.load_builder("no_such_dataset", empty)
    completed = subprocess.run(
        [sys.executable, "-m", "cma_tf.train", "--config=configs/coco_tfds.py:cma", f"--config.data.tfds_data_dir={empty}",
         f"--workdir={tmp_path / 'run'}"],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert completed.returncode == 2
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not prepared in" in errors[0], completed.stderr[-2000:]


def test_wrong_fields_and_an_unlabelled_eval_split_are_refused(prepared):
    data_dir, _ = prepared
    config = tfds_config("coco", data_dir, tfds_label_field="objects/bbox")
    with pytest.raises(ConfigError, match="'objects/bbox' is not a ClassLabel field; its features are .*objects/label"):
        factory.read_vocabulary(config)
    with pytest.raises(ConfigError, match="leave config.data.vocabulary unset"):
        factory.validate_config(tfds_config("coco", data_dir, vocabulary="labels.txt"))
    with pytest.raises(ConfigError, match="give that folder as --config.data.tfds_data_dir and leave data_dir empty"):
        with_data_dir = tfds_config("coco", data_dir)
        with_data_dir.data.data_dir = data_dir
        factory.validate_config(with_data_dir)
    image = tfds_config("coco", data_dir)
    image.data.format = "image"
    with pytest.raises(ConfigError, match="config.data.tfds_name, config.data.tfds_data_dir set but config.data.format="
                                          "'image': they are read only with --config.data.format=tfds"):
        factory.validate_config(image)
    with pytest.raises(DataError, match="has no split 'val' .*it has test, train, validation"):
        factory.list_data_files(tfds_config("coco", data_dir), "val")
    voc = tfds_config("voc", data_dir)
    with pytest.raises(DataError, match="split 'test' of TFDS dataset voc/2007.* have no labels in 'labels'"):
        factory.build_dataset(voc, 20, "test", training=False)


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_training_evaluation_and_export(prepared, tmp_path):
    data_dir, _ = prepared
    config = tfds_config("coco", data_dir, label_graph=str(tmp_path / "graph.npz"))
    workdir = str(tmp_path / "run")
    dry = train_and_evaluate(config, workdir, dry_run=True)
    assert np.isfinite(dry["mAP"])
    metrics = train_and_evaluate(config, workdir)
    assert 0 <= metrics["mAP"] <= 1 and files.read_config(workdir).data.tfds_name == "coco/2014"
    with open(os.path.join(workdir, "labels.txt")) as f:
        assert f.read().splitlines() == tfds_mock.coco_names()

    model = keras.saving.load_model(files.trained_model_path(workdir))
    builder = factory.data_kind(config).builder(config)
    parse = tfds_records.example_parser(builder, "objects/label")
    encoded = [parse(record)[0].numpy() for record in tf.data.TFRecordDataset(factory.list_data_files(config, "validation"))]
    export_dir = str(tmp_path / "export" / "1")
    export_saved_model(model, tfds_mock.coco_names(), factory.serving_request(config), export_dir, top_k=3)
    served = tf.saved_model.load(export_dir).signatures["serving_default"](images=tf.constant(encoded))
    pixels = np.stack([images.decode_and_resize(tf.constant(item), 32).numpy() for item in encoded])
    np.testing.assert_allclose(served["scores"].numpy(), keras_scores(model, pixels), atol=1e-5)
    assert served["valid"].numpy().all()
