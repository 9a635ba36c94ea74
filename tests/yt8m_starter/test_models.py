"""The starter-code model classes (cma_tf/yt8m_starter/models.py): their forward pass in a TF1
graph against a numpy re-derivation of Eq. 6-10 from the same variable values; and, when
YT8M_STARTER_DIR names a copy of the YouTube-8M starter code, its unchanged train.py training
CmaSnetModel through `python -m cma_tf.yt8m_starter.run`.

The graphs are built in `tf.Graph().as_default()` blocks and run in `tf.compat.v1.Session`s;
eager execution stays on for the rest of the pytest process.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data.records import write_shard
from cma_tf.data.yt8m.records import encode_frame_example
from cma_tf.errors import ConfigError, DataError
from cma_tf.yt8m_starter import models as starter_models
from cma_tf.yt8m_starter import run as starter_train
from tests.yt8m_starter.conftest import CMA_FLAGS, run_starter, write_tiny_frame_records

v1 = tf.compat.v1
BN_EPSILON = 1e-3
EPSILON = 1e-6


# === numpy reference (independent of the code under test) ===


def ref_resample(video, count, frames):
    """Centre frame of each of `frames` equal bins of the first `count` frames."""
    index = np.floor((np.arange(frames) + 0.5) / frames * count).astype(int)
    return video[np.clip(index, 0, max(count - 1, 0))]


def ref_bn(x, w, scope):
    return ((x - w[scope + "/moving_mean"]) / np.sqrt(w[scope + "/moving_variance"] + BN_EPSILON)
            * w[scope + "/gamma"] + w[scope + "/beta"])


def ref_conv1d_same(x, kernel):
    """x [T, C], kernel [3, C, F]: y[t] = Σ_j x[t + j − 1] · kernel[j], zero padding."""
    padded = np.pad(x, ((1, 1), (0, 0)))
    return sum(padded[j:j + len(x)] @ kernel[j] for j in range(3))


def ref_cos_normalize(x):
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), EPSILON)


def ref_logits(name, w, video, count, embeddings, frames):
    relu = lambda v: np.maximum(v, 0.0)
    x = ref_resample(video, count, frames)
    if "Snet" in name:
        for i in range(4):
            s = f"tower/backbone/snet_{i}"
            x = relu(ref_bn(ref_conv1d_same(x, w[s + "/kernel"]), w, s + "/bn"))
            x = np.stack([x[j:j + 2].max(axis=0) for j in range(0, len(x), 2)])  # 'SAME' pool
    else:
        for i in range(2):
            s = f"tower/backbone/fc_{i}"
            x = relu(ref_bn(x @ w[s + "/dense/kernel"], w, s + "/bn"))
    visual = x  # I [M, C]
    if name.startswith("Cma"):
        projected = visual
        for i in range(2):  # Eq. 6
            s = f"tower/cmt_{i}"
            projected = relu(ref_bn(projected @ w[s + "/conv1x1/kernel"], w, s + "/bn"))
        z = relu(ref_cos_normalize(embeddings) @ ref_cos_normalize(projected).T)  # Eq. 7, [N, M]
    else:
        s = "tower/self_attention/conv1x1"
        z = (1.0 / (1.0 + np.exp(-(visual @ w[s + "/kernel"] + w[s + "/bias"])))).T
    a = z / np.maximum(z.sum(axis=1, keepdims=True), EPSILON)  # Eq. 8
    h = a @ visual  # Eq. 9, [N, C]: attention pools I, not I_s
    return (h * w["tower/classifier/kernel"]).sum(axis=1) + w["tower/classifier/bias"]  # Eq. 10


# === graph helpers ===

B, MAX_FRAMES, D, N, C_E, T, WIDTH = 3, 40, 12, 5, 4, 37, 6  # SNet: 37 → 19 → 10 → 5 → 3
COUNTS = np.array([40, 7, 1], np.int32)


def seeded_graph():
    """A graph with a graph-level seed: earlier tests in this process enable op determinism
    (deterministic training runs), under which unseeded random ops refuse to run."""
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(0)
    return graph


def build(model, is_training):
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, [None, MAX_FRAMES, D])
        counts = v1.placeholder(tf.int32, [None])
        with v1.variable_scope("tower"):
            result = model.create_model(inputs, vocab_size=N, num_frames=counts,
                                        is_training=is_training, labels=None)
    return graph, inputs, counts, result


def randomize_variables(session, graph, rng):
    """Every variable (BN statistics included) to random values, so each term counts; BN's
    γ and β keep most ReLU outputs positive, so the attention is rarely all zero."""
    values = {}
    ranges = {"moving_variance": (0.5, 2.0), "gamma": (0.5, 1.5), "beta": (0.0, 0.5)}
    with graph.as_default():
        for variable in v1.global_variables():
            shape = variable.shape.as_list()
            value = rng.normal(0.0, 0.5, shape).astype(np.float32)
            for suffix, (low, high) in ranges.items():
                if variable.op.name.endswith(suffix):
                    value = rng.uniform(low, high, shape).astype(np.float32)
            variable.load(value, session)
            values[variable.op.name] = value
    return values


def model_kwargs(embeddings):
    return dict(label_embeddings=embeddings, frames=T, snet_filters=WIDTH, fc_units=WIDTH)


@pytest.mark.parametrize("model_class", starter_models.ATTENTION_MODELS, ids=lambda c: c.__name__)
def test_inference_matches_numpy_equations(model_class):
    rng = np.random.default_rng(3)
    # Mostly positive, like the ReLU outputs I_s they are compared with, so most cosines are > 0.
    embeddings = rng.uniform(-0.3, 1.0, size=(N, C_E)).astype(np.float32)
    video = rng.normal(size=(B, MAX_FRAMES, D)).astype(np.float32)
    graph, inputs, counts, result = build(model_class(**model_kwargs(embeddings)), False)
    with v1.Session(graph=graph) as session:
        weights = randomize_variables(session, graph, rng)
        logits, predictions = session.run([result["logits"], result["predictions"]],
                                          {inputs: video, counts: COUNTS})
    assert predictions.shape == (B, N)
    expected = np.stack([ref_logits(model_class.__name__, weights, video[b], COUNTS[b],
                                    embeddings, T) for b in range(B)])
    attended = expected - weights["tower/classifier/bias"]
    assert np.mean(np.abs(attended) > 1e-3) > 0.5, "degenerate case: mostly zero attention"
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(predictions, 1.0 / (1.0 + np.exp(-expected)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model_class", starter_models.ATTENTION_MODELS, ids=lambda c: c.__name__)
def test_training_graph_probabilities_and_batchnorm_updates(model_class):
    rng = np.random.default_rng(4)
    embeddings = rng.normal(size=(N, C_E)).astype(np.float32)
    graph, inputs, counts, result = build(model_class(**model_kwargs(embeddings)), True)
    with graph.as_default():
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        num_bn = sum(1 for v in v1.global_variables() if v.op.name.endswith("moving_mean"))
        init = v1.global_variables_initializer()
    assert num_bn >= 2 and len(updates) == 2 * num_bn
    with v1.Session(graph=graph) as session:
        session.run(init)
        feed = {inputs: rng.normal(size=(B, MAX_FRAMES, D)), counts: COUNTS}
        predictions, _ = session.run([result["predictions"], updates], feed)
    assert predictions.shape == (B, N)
    assert np.all((predictions > 0) & (predictions < 1))


def test_snet_squeezes_300_frames_to_19_positions_like_the_keras_backbone():
    with seeded_graph().as_default():
        features = starter_models.snet(v1.placeholder(tf.float32, [None, 300, 8]), False, 4)
    assert features.shape.as_list() == [None, 19, 4]


def test_batch_norm_training_uses_batch_statistics_and_updates_moving_averages():
    x = np.random.default_rng(5).normal(2.0, 3.0, size=(4, 5, 3)).astype(np.float32)
    graph = seeded_graph()
    with graph.as_default():
        y = starter_models.batch_norm(tf.constant(x), True, "bn")
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        moving = [v for v in v1.global_variables() if "moving" in v.op.name]
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as session:
        session.run(init)
        out = session.run(y)
        session.run(updates)
        mean_after, variance_after = session.run(moving)
    mean, variance = x.mean(axis=(0, 1)), x.var(axis=(0, 1))
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(variance + BN_EPSILON), atol=1e-5)
    np.testing.assert_allclose(mean_after, 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(variance_after, 0.99 + 0.01 * variance, rtol=1e-5)


def test_cosine_of_an_all_zero_row_has_finite_gradient():
    graph = seeded_graph()
    with graph.as_default():
        x = tf.constant([[0.0, 0.0, 0.0], [1.0, 2.0, 2.0]])
        y = starter_models.l2_normalize(x)
        (grad,) = tf.gradients(tf.reduce_sum(y * [[1.0, 2.0, 3.0]]), [x])
    with v1.Session(graph=graph) as session:
        y_value, grad_value = session.run([y, grad])
    np.testing.assert_allclose(y_value, [[0, 0, 0], [1 / 3, 2 / 3, 2 / 3]], atol=1e-6)
    assert np.all(np.isfinite(grad_value))


def test_wrong_shaped_embeddings_file_names_the_file(tmp_path):
    path = str(tmp_path / "label_embeddings.npy")
    np.save(path, np.zeros((N + 1, C_E), np.float32))
    with pytest.raises(DataError, match=r"label_embeddings\.npy.*\(6, 4\).*vocab_size = 5"):
        build(starter_models.CmaSnetModel(**model_kwargs(path)), False)
    np.save(path, np.ones((N, C_E), np.float32))
    graph, _, _, result = build(starter_models.CmaSnetModel(**model_kwargs(path)), False)
    assert result["predictions"].shape.as_list() == [None, N]


def test_missing_embeddings_file_names_the_file(tmp_path):
    path = str(tmp_path / "absent.npy")
    with pytest.raises(DataError, match="Cannot read label embeddings from .*absent.npy"):
        build(starter_models.CmaFcModel(**model_kwargs(path)), False)


def test_runner_finds_a_user_error_wrapped_by_autograph():
    def raise_wrapped():
        try:
            raise DataError("bad embeddings file")
        except DataError as error:
            raise RuntimeError("StagingError: in user code ...") from error

    with pytest.raises(RuntimeError) as wrapped:
        raise_wrapped()
    assert str(starter_train.find_user_error(wrapped.value)) == "bad embeddings file"
    assert starter_train.find_user_error(RuntimeError("a bug")) is None


def test_missing_embeddings_and_too_few_frames_are_config_errors():
    with pytest.raises(ConfigError, match="--cma_label_embeddings"):
        build(starter_models.CmaFcModel(frames=T, fc_units=WIDTH), False)
    with pytest.raises(ConfigError, match="--cma_frames ≥ 1"):
        build(starter_models.SelfAttentionSnetModel(frames=0, snet_filters=WIDTH), False)


@pytest.mark.parametrize("model_class", starter_models.MODELS, ids=lambda c: c.__name__)
def test_video_level_input_says_the_model_needs_frame_features(model_class):
    """The starter's video-level reader hands `[B, D]` (one mean vector per video)."""
    with seeded_graph().as_default():
        inputs = v1.placeholder(tf.float32, [None, D])
        with pytest.raises(ConfigError, match=f"{model_class.__name__} needs frame-level input.*--frame_features"):
            attention = model_class in starter_models.ATTENTION_MODELS
            kwargs = model_kwargs(np.ones((N, C_E), np.float32)) if attention else {}
            model_class(**kwargs).create_model(
                inputs, vocab_size=N, num_frames=v1.placeholder(tf.int32, [None]), is_training=False)


# === the starter code's own train.py ===


def test_starter_train_py_trains_cma_snet_and_writes_a_checkpoint(starter_run):
    _, _, train_dir, proc = starter_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "training step 10 | Loss:" in proc.stderr
    checkpoint = str(train_dir / "model.ckpt-10")
    assert os.path.isfile(checkpoint + ".index")
    reader = tf.train.load_checkpoint(checkpoint)
    assert reader.get_tensor("tower/classifier/kernel").shape == (3862, 4)
    # The starter ran the BatchNorm updates (UPDATE_OPS) with its training steps.
    assert np.any(reader.get_tensor("tower/cmt_0/bn/moving_mean") != 0.0)


def write_segment_rated_records(path, num_videos=3, frames=15, seed=2):
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(num_videos):
        segments = {"segment_start_times": [0, 5, 10], "segment_end_times": [5, 10, 15],
                    "segment_labels": [3, 5, 3], "segment_scores": [1.0, 0.0, 0.0]}
        examples.append(encode_frame_example(
            f"rated{i}", [3], rng.integers(0, 256, (frames, 1024), dtype=np.uint8),
            rng.integers(0, 256, (frames, 128), dtype=np.uint8), segments))
    write_shard(path, examples)


def reference_segment_ids(path):
    """`<id>:<start>` of every 5-frame segment of the records, read with a plain parser."""
    ids = set()
    for raw in tf.data.TFRecordDataset(path):
        context, sequences = tf.io.parse_single_sequence_example(
            raw, context_features={"id": tf.io.FixedLenFeature([], tf.string)},
            sequence_features={"rgb": tf.io.FixedLenSequenceFeature([], tf.string)})
        count = int(sequences["rgb"].shape[0])
        ids.update(f"{context['id'].numpy().decode()}:{start}" for start in range(0, count, 5))
    return ids


def test_starter_eval_py_and_inference_py_run_our_checkpoint(starter_dir, starter_run):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    write_segment_rated_records(str(folder / "validate0000.tfrecord"))
    # eval.py rebuilds CmaSnetModel (named in train_dir/model_flags.json), restores
    # model.ckpt-10, scores the rated segments and saves the graph inference.py loads.
    evaluated = run_starter(
        starter_dir, "eval", f"--cma_label_embeddings={embeddings}", *CMA_FLAGS,
        f"--eval_data_pattern={folder / 'validate*.tfrecord'}", "--segment_labels", f"--train_dir={train_dir}",
        "--batch_size=4", "--num_readers=1", "--run_once",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "epoch/eval number 10 | Avg_Hit@1:" in evaluated.stderr and "| GAP:" in evaluated.stderr
    assert os.path.isfile(train_dir / "inference_model" / "segment_inference_model.meta")

    test_records = str(folder / "test0000.tfrecord")
    write_tiny_frame_records(test_records, num_videos=3, frames=12, seed=7)
    rated_classes = [3, 17, 3861]
    (folder / "segment_label_ids.csv").write_text("Index\n" + "\n".join(map(str, rated_classes)) + "\n")
    output = folder / "submission.csv"
    inferred = run_starter(
        starter_dir, "inference", f"--input_data_pattern={test_records}", "--segment_labels",
        f"--segment_label_ids_file={folder / 'segment_label_ids.csv'}", f"--train_dir={train_dir}",
        "--batch_size=4", f"--output_file={output}",
    )
    assert inferred.returncode == 0, inferred.stderr[-3000:]
    lines = output.read_text().splitlines()
    assert lines[0] == "Class,Segments"
    rows = dict(line.split(",") for line in lines[1:])
    # Each segment's top 20 of 3,862 scores (σ > 0 at the rated classes, 0 elsewhere) holds
    # every rated class, so every rated class ranks every segment of the test videos.
    assert sorted(map(int, rows)) == rated_classes
    expected = reference_segment_ids(test_records)
    assert len(expected) == 3 * 3
    for segments in rows.values():
        assert sorted(segments.split(" ")) == sorted(expected)


def test_starter_eval_py_without_the_embeddings_flag_is_one_line(starter_dir, starter_run):
    folder, _, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    proc = run_starter(starter_dir, "eval", *CMA_FLAGS, f"--eval_data_pattern={folder / 'train*.tfrecord'}",
                       f"--train_dir={train_dir}", "--batch_size=4", "--num_readers=1", "--run_once")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "--cma_label_embeddings" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("pool", [2, 3, 4])
@pytest.mark.parametrize("length", [1, 7, 9, 10, 19])
def test_the_tf1_max_pool_is_keras_same_pooling(pool, length):
    """`max_pool_same` is `keras.layers.MaxPooling1D(pool, padding="same")` for any pool size
    (the architecture's is 2), on lengths that need padding before and after."""
    import keras

    x = np.random.default_rng(length * 10 + pool).normal(size=(2, length, 3)).astype(np.float32)
    expected = keras.layers.MaxPooling1D(pool, padding="same")(x).numpy()
    np.testing.assert_array_equal(starter_models.max_pool_same(tf.constant(x), pool).numpy(), expected)
