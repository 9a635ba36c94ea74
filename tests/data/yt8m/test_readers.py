"""Tests of cma_tf.data.yt8m.readers (frame-level, video-level and segment-rated records).

References, none sharing code with the readers:
  - each record parsed on its own with plain `tf.io.parse_single_sequence_example` /
    `tf.io.parse_single_example` against the format written out below, and dequantized in
    numpy as the starter code's `utils.Dequantize` defines it: `q · 4/255 + 4/512 − 2`;
  - the rated segments re-derived in numpy from the generated arrays;
  - when the environment variable YT8M_STARTER_DIR names a copy of the google/youtube-8m
    starter code, its own readers, run in a subprocess under `tf.compat.v1` graph mode on the
    same records (this test session stays eager).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data.yt8m import frames, readers, records
from tests.helpers import numpy_frames

NUM_CLASSES = 30
MAX_FRAMES = 10  # small, so that truncation is exercised by short records
RGB_SIZE, AUDIO_SIZE = 1024, 128  # the published widths, written out independently
SEGMENT_SIZE = 5
ATOL = 1e-6
# TensorFlow escapes the quotes of an assertion's message: field \'labels\'.
LABELS_FIELD_ERROR = r"field \\?'labels\\?'"

# Frame-level videos: (frames, labels). 0 frames, exactly and beyond MAX_FRAMES, a repeated
# label id, the last class, no labels.
FRAME_VIDEOS = [
    (0, [1]),
    (1, []),
    (4, [0, 29]),
    (10, [5]),
    (11, [7, 3, 7]),
    (17, [2, 4, 6]),
    (7, [29]),
    (3, [8, 9]),
]
FILE_SPLIT = 5  # videos [0, 5) in the first shard, the rest in the second

# Segment-rated videos: (frames, labels, start times, rated labels, scores). Start times repeat
# and come unsorted, as in the published validate records; a segment may end on the last frame.
SEGMENT_VIDEOS = [
    (15, [3], [10, 0, 10, 5], [2, 7, 4, 7], [1.0, 0.0, 0.0, 1.0]),
    (20, [1, 2], [0], [29], [1.0]),
    (31, [0], [25, 5, 25, 15, 5], [0, 0, 1, 11, 12], [1.0, 0.0, 1.0, 0.0, 0.0]),
]

VIDEO_LEVEL_LABELS = [[], [0], [3, 17], [29], [4, 4, 5]]


# --------------------------------------------------------------------------
# The record format, written out independently of readers.py
# --------------------------------------------------------------------------


def reference_context_spec(segments=False):
    spec = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}
    if segments:
        spec.update({
            "segment_start_times": tf.io.VarLenFeature(tf.int64),
            "segment_end_times": tf.io.VarLenFeature(tf.int64),
            "segment_labels": tf.io.VarLenFeature(tf.int64),
            "segment_scores": tf.io.VarLenFeature(tf.float32),
        })
    return spec


REFERENCE_SEQUENCE_SPEC = {
    "rgb": tf.io.FixedLenSequenceFeature([], tf.string),
    "audio": tf.io.FixedLenSequenceFeature([], tf.string),
}


def numpy_dequantize(codes):
    return codes.astype(np.float64) * 4.0 / 255.0 + 4.0 / 512.0 - 2.0


def reference_frame_record(serialized, num_classes=NUM_CLASSES, max_frames=MAX_FRAMES):
    """One frame-level record → id, multi-hot, frame count and `[max_frames, 1024 + 128]`."""
    context, sequences = tf.io.parse_single_sequence_example(
        serialized, context_features=reference_context_spec(), sequence_features=REFERENCE_SEQUENCE_SPEC)
    rgb = tf.io.decode_raw(sequences["rgb"], tf.uint8).numpy().reshape(-1, RGB_SIZE)
    audio = tf.io.decode_raw(sequences["audio"], tf.uint8).numpy().reshape(-1, AUDIO_SIZE)
    count = min(len(rgb), max_frames)
    matrix = np.zeros([max_frames, RGB_SIZE + AUDIO_SIZE])
    matrix[:count] = numpy_dequantize(np.concatenate([rgb, audio], axis=1)[:count])
    labels = np.zeros([num_classes])
    labels[context["labels"].values.numpy()] = 1.0
    return {"id": context["id"].numpy().decode(), "labels": labels, "num_frames": count, "matrix": matrix}


def reference_video_level_record(serialized, num_classes=NUM_CLASSES):
    parsed = tf.io.parse_single_example(serialized, {
        "id": tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([RGB_SIZE], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([AUDIO_SIZE], tf.float32),
    })
    labels = np.zeros([num_classes])
    labels[parsed["labels"].values.numpy()] = 1.0
    matrix = np.concatenate([parsed["mean_rgb"].numpy(), parsed["mean_audio"].numpy()])
    return {"id": parsed["id"].numpy().decode(), "labels": labels, "matrix": matrix}


def numpy_segments(video, num_classes=NUM_CLASSES):
    """The rated segments of one generated video: 5 frames from each distinct start time (in
    order of first appearance), scores at the rated classes, weight 1 at the rated classes."""
    starts, rated, scores = video["segment_start_times"], video["segment_labels"], video["segment_scores"]
    unique = list(dict.fromkeys(starts))
    matrix = numpy_dequantize(np.concatenate([video["rgb"], video["audio"]], axis=1))
    labels = np.zeros([len(unique), num_classes])
    weights = np.zeros([len(unique), num_classes])
    for start, label, score in zip(starts, rated, scores):
        labels[unique.index(start), label] = score
        weights[unique.index(start), label] = 1.0
    return {
        "start_times": np.array(unique),
        "matrix": np.stack([matrix[s:s + SEGMENT_SIZE] for s in unique]),
        "labels": labels,
        "label_weights": weights,
    }


# --------------------------------------------------------------------------
# Generated records
# --------------------------------------------------------------------------


def write_records(path, serialized):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in serialized:
            writer.write(record)
    return str(path)


def random_frames(rng, count):
    return (rng.integers(0, 256, [count, RGB_SIZE], dtype=np.uint8),
            rng.integers(0, 256, [count, AUDIO_SIZE], dtype=np.uint8))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    directory = tmp_path_factory.mktemp("yt8m_readers")
    rng = np.random.default_rng(7)

    frame_videos = []
    for index, (count, labels) in enumerate(FRAME_VIDEOS):
        rgb, audio = random_frames(rng, count)
        frame_videos.append({"id": f"f{index:03d}", "labels": labels, "rgb": rgb, "audio": audio})
    frame_serialized = [records.encode_frame_example(v["id"], v["labels"], v["rgb"], v["audio"]) for v in frame_videos]
    frame_files = [
        write_records(directory / "frame0000.tfrecord", frame_serialized[:FILE_SPLIT]),
        write_records(directory / "frame0001.tfrecord", frame_serialized[FILE_SPLIT:]),
    ]
    # Training and evaluation refuse a video without frames (f000): their pipelines read these.
    nonempty_files = [
        write_records(directory / "nonempty0000.tfrecord", frame_serialized[1:FILE_SPLIT]),
        write_records(directory / "nonempty0001.tfrecord", frame_serialized[FILE_SPLIT:]),
    ]

    segment_videos = []
    for index, (count, labels, starts, rated, scores) in enumerate(SEGMENT_VIDEOS):
        rgb, audio = random_frames(rng, count)
        segment_videos.append({
            "id": f"s{index:03d}", "labels": labels, "rgb": rgb, "audio": audio,
            "segment_start_times": starts, "segment_end_times": [s + SEGMENT_SIZE for s in starts],
            "segment_labels": rated, "segment_scores": scores,
        })
    segment_file = write_records(directory / "validate0000.tfrecord", [
        records.encode_frame_example(v["id"], v["labels"], v["rgb"], v["audio"], segments=v) for v in segment_videos
    ])

    video_level = []
    for index, labels in enumerate(VIDEO_LEVEL_LABELS):
        video_level.append({
            "id": f"v{index:03d}", "labels": labels,
            "mean_rgb": rng.uniform(-2, 2, RGB_SIZE).astype(np.float32),
            "mean_audio": rng.uniform(-2, 2, AUDIO_SIZE).astype(np.float32),
        })
    video_file = write_records(directory / "video0000.tfrecord", [
        records.encode_video_level_example(v["id"], v["labels"], v["mean_rgb"], v["mean_audio"]) for v in video_level
    ])

    return {
        "directory": directory,
        "frame_videos": frame_videos,
        "frame_serialized": frame_serialized,
        "frame_files": frame_files,
        "nonempty_files": nonempty_files,
        "frame_reference": {r["id"]: r for r in map(reference_frame_record, frame_serialized)},
        "segment_videos": segment_videos,
        "segment_file": segment_file,
        "video_level": video_level,
        "video_file": video_file,
        "video_reference": {r["id"]: r for r in map(reference_video_level_record, _read(video_file))},
    }


def _read(path):
    return [record.numpy() for record in tf.data.TFRecordDataset(path)]


def collect(dataset):
    """All batches of a dict dataset, concatenated along the batch axis, as numpy."""
    batches = [{key: value.numpy() for key, value in batch.items()} for batch in dataset]
    return {key: np.concatenate([batch[key] for batch in batches]) for key in batches[0]}


def decoded_ids(ids):
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]


# --------------------------------------------------------------------------
# (a) Against the plain-TensorFlow / numpy references
# --------------------------------------------------------------------------


def test_reference_parse_matches_the_generated_frames(data):
    """The reference itself: what was written is what it reads (dequantized)."""
    for video in data["frame_videos"]:
        ref = data["frame_reference"][video["id"]]
        count = min(len(video["rgb"]), MAX_FRAMES)
        assert ref["num_frames"] == count
        expected = numpy_dequantize(np.concatenate([video["rgb"], video["audio"]], axis=1)[:count])
        np.testing.assert_array_equal(ref["matrix"][:count], expected)
        assert not ref["matrix"][count:].any()


@pytest.mark.parametrize("batch_size", [1, 3, 8])
def test_frame_records_match_reference(data, batch_size):
    out = collect(readers.frame_records(data["frame_files"], NUM_CLASSES, batch_size, max_frames=MAX_FRAMES))
    ids = decoded_ids(out["video_ids"])
    assert sorted(ids) == sorted(data["frame_reference"])
    assert out["video_matrix"].shape == (len(FRAME_VIDEOS), MAX_FRAMES, RGB_SIZE + AUDIO_SIZE)
    assert out["video_matrix"].dtype == np.float32 and out["labels"].dtype == np.float32
    for row, video_id in enumerate(ids):
        ref = data["frame_reference"][video_id]
        assert out["num_frames"][row] == ref["num_frames"], video_id
        np.testing.assert_array_equal(out["labels"][row], ref["labels"], err_msg=video_id)
        np.testing.assert_allclose(out["video_matrix"][row], ref["matrix"], rtol=0, atol=ATOL, err_msg=video_id)
        assert not out["video_matrix"][row, ref["num_frames"]:].any(), video_id


def test_frame_records_in_file_order_when_deterministic(data):
    out = collect(readers.frame_records(data["frame_files"][:1], NUM_CLASSES, 2, max_frames=MAX_FRAMES))
    assert decoded_ids(out["video_ids"]) == [v["id"] for v in data["frame_videos"][:FILE_SPLIT]]


def test_frame_records_at_the_published_sizes(data):
    """max_frames 300 and the 3,862-class vocabulary: nothing is truncated."""
    out = collect(readers.frame_records(data["frame_files"], records.NUM_CLASSES, 4))
    assert out["video_matrix"].shape[1:] == (300, RGB_SIZE + AUDIO_SIZE)
    assert out["labels"].shape[1] == 3862
    for row, video_id in enumerate(decoded_ids(out["video_ids"])):
        ref = reference_frame_record(data["frame_serialized"][int(video_id[1:])], 3862, 300)
        assert out["num_frames"][row] == len(data["frame_videos"][int(video_id[1:])]["rgb"])
        np.testing.assert_array_equal(out["labels"][row], ref["labels"])
        np.testing.assert_allclose(out["video_matrix"][row], ref["matrix"], rtol=0, atol=ATOL)


def test_rgb_only(data):
    out = collect(readers.frame_records(
        data["frame_files"], NUM_CLASSES, 4, feature_names=("rgb",), max_frames=MAX_FRAMES))
    assert out["video_matrix"].shape == (len(FRAME_VIDEOS), MAX_FRAMES, RGB_SIZE)
    for row, video_id in enumerate(decoded_ids(out["video_ids"])):
        ref = data["frame_reference"][video_id]
        np.testing.assert_allclose(out["video_matrix"][row], ref["matrix"][:, :RGB_SIZE], rtol=0, atol=ATOL)


def test_label_outside_vocabulary_names_the_field(tmp_path):
    rgb, audio = random_frames(np.random.default_rng(0), 3)
    path = write_records(tmp_path / "bad0000.tfrecord", [
        records.encode_frame_example("ok", [1], rgb, audio),
        records.encode_frame_example("bad", [2, NUM_CLASSES], rgb, audio),
    ])
    with pytest.raises(tf.errors.InvalidArgumentError, match=LABELS_FIELD_ERROR):
        collect(readers.frame_records([path], NUM_CLASSES, 2, max_frames=MAX_FRAMES))
    path = write_records(tmp_path / "badvideo0000.tfrecord", [
        records.encode_video_level_example("bad", [NUM_CLASSES + 5], np.zeros(RGB_SIZE), np.zeros(AUDIO_SIZE)),
    ])
    with pytest.raises(tf.errors.InvalidArgumentError, match=LABELS_FIELD_ERROR):
        collect(readers.video_level_records([path], NUM_CLASSES, 2))


def parse_checked(path):
    """The batched parser with the frame-size check (serving requests use it)."""
    serialized = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(str(path))])
    return readers.parse_frame_examples(serialized, NUM_CLASSES, max_frames=MAX_FRAMES, check_frame_sizes=True)


def test_a_frame_of_the_wrong_size_names_the_field(tmp_path):
    """`decode_raw(fixed_length=…)` would zero-pad a short frame; the checked parser refuses it."""
    rgb, audio = random_frames(np.random.default_rng(0), 3)
    example = tf.train.SequenceExample.FromString(records.encode_frame_example("short", [1], rgb, audio))
    example.feature_lists.feature_list["audio"].feature[2].bytes_list.value[0] = bytes(100)
    path = write_records(tmp_path / "short0000.tfrecord", [
        records.encode_frame_example("ok", [1], rgb[:2], audio[:2]), example.SerializeToString(),
    ])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"field .{1,2}audio.{1,2} holds a frame that is not 128 bytes"):
        parse_checked(path)
    # An empty frame inside a video is refused too; the padding after a shorter video is not.
    example.feature_lists.feature_list["audio"].feature[2].bytes_list.value[0] = audio[2].tobytes()
    example.feature_lists.feature_list["rgb"].feature[1].bytes_list.value[0] = b""
    path = write_records(tmp_path / "empty0000.tfrecord", [
        records.encode_frame_example("ok", [1], rgb[:1], audio[:1]), example.SerializeToString(),
    ])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"field .{1,2}rgb.{1,2} holds a frame that is not 1024 bytes"):
        parse_checked(path)
    # The padding after the shorter video of a batch is not a short frame.
    path = write_records(tmp_path / "padded0000.tfrecord", [
        records.encode_frame_example("one", [1], rgb[:1], audio[:1]), records.encode_frame_example("three", [1], rgb, audio),
    ])
    assert parse_checked(path)["num_frames"].numpy().tolist() == [1, 3]


def test_video_level_records_match_reference(data):
    out = collect(readers.video_level_records([data["video_file"]], NUM_CLASSES, 2))
    ids = decoded_ids(out["video_ids"])
    assert ids == [v["id"] for v in data["video_level"]]
    assert out["video_matrix"].shape == (len(VIDEO_LEVEL_LABELS), RGB_SIZE + AUDIO_SIZE)
    np.testing.assert_array_equal(out["num_frames"], np.ones(len(ids)))
    for row, video in enumerate(data["video_level"]):
        ref = data["video_reference"][video["id"]]
        np.testing.assert_array_equal(out["labels"][row], ref["labels"])
        np.testing.assert_array_equal(out["video_matrix"][row], ref["matrix"])
        written = np.concatenate([video["mean_rgb"], video["mean_audio"]])
        np.testing.assert_array_equal(out["video_matrix"][row], written)
    rgb_only = collect(readers.video_level_records([data["video_file"]], NUM_CLASSES, 5, feature_names=("mean_rgb",)))
    np.testing.assert_array_equal(rgb_only["video_matrix"], out["video_matrix"][:, :RGB_SIZE])


@pytest.mark.parametrize("batch_size", [1, 4, 64])
def test_segment_records_match_numpy(data, batch_size):
    out = collect(readers.segment_records([data["segment_file"]], NUM_CLASSES, batch_size))
    expected = [numpy_segments(v) for v in data["segment_videos"]]
    ids = decoded_ids(out["video_ids"])
    assert ids == [v["id"] for v, e in zip(data["segment_videos"], expected) for _ in e["start_times"]]
    np.testing.assert_array_equal(out["segment_start_times"], np.concatenate([e["start_times"] for e in expected]))
    np.testing.assert_array_equal(out["num_frames"], np.full(len(ids), SEGMENT_SIZE))
    np.testing.assert_allclose(out["video_matrix"], np.concatenate([e["matrix"] for e in expected]), rtol=0, atol=ATOL)
    np.testing.assert_array_equal(out["labels"], np.concatenate([e["labels"] for e in expected]))
    np.testing.assert_array_equal(out["label_weights"], np.concatenate([e["label_weights"] for e in expected]))


def test_make_frame_dataset_evaluation_resamples_the_reference(data):
    frames_t = 6
    dataset = readers.make_frame_dataset(
        data["nonempty_files"][:1], NUM_CLASSES, frames_t, batch_size=2, training=False,
        max_frames=MAX_FRAMES, deterministic=True,
    )
    inputs = [{key: value.numpy() for key, value in f.items()} for f, _ in dataset]
    assert all(batch["frame_codes"].dtype == np.uint8 for batch in inputs)  # the model dequantizes
    features = np.concatenate([numpy_frames(batch) for batch in inputs])
    labels = np.concatenate([l.numpy() for _, l in dataset])
    floats = readers.make_frame_dataset(
        data["nonempty_files"][:1], NUM_CLASSES, frames_t, batch_size=2, training=False,
        max_frames=MAX_FRAMES, deterministic=True, codes=False,
    )
    np.testing.assert_allclose(np.concatenate([f.numpy() for f, _ in floats]), features, rtol=0, atol=1e-6)
    refs = [data["frame_reference"][v["id"]] for v in data["frame_videos"][1:FILE_SPLIT]]
    expected = frames.resample_frames(
        tf.constant(np.stack([r["matrix"] for r in refs]), tf.float32),
        tf.constant([r["num_frames"] for r in refs]), frames_t,
    ).numpy()
    assert features.shape == (FILE_SPLIT - 1, frames_t, RGB_SIZE + AUDIO_SIZE)
    np.testing.assert_allclose(features, expected, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(labels, np.stack([r["labels"] for r in refs]))


def test_make_frame_dataset_training_is_deterministic_for_a_seed(data):
    frames_t = 4

    def run(seed):
        dataset = readers.make_frame_dataset(
            data["nonempty_files"], NUM_CLASSES, frames_t, batch_size=3, training=True,
            max_frames=MAX_FRAMES, seed=seed, shuffle_buffer=16, deterministic=True,
        )
        return [(numpy_frames({key: value.numpy() for key, value in f.items()}), l.numpy()) for f, l in dataset]

    first, again, other = run(5), run(5), run(6)
    assert len(first) == (len(FRAME_VIDEOS) - 1) // 3  # drop_remainder in training
    for (f1, l1), (f2, l2) in zip(first, again):
        assert f1.shape == (3, frames_t, RGB_SIZE + AUDIO_SIZE)
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(l1, l2)
    assert any(not np.array_equal(f1, f2) for (f1, _), (f2, _) in zip(first, other))
    # Every output position is a real frame of its video, from that position's bin.
    by_labels = {}
    for ref in data["frame_reference"].values():
        by_labels.setdefault(ref["labels"].tobytes(), []).append(ref)
    for features, labels in first:
        for video_features, video_labels in zip(features, labels):
            candidates = by_labels[video_labels.astype(np.float64).tobytes()]
            assert any(_is_binned_resampling(video_features, ref, frames_t) for ref in candidates)


def _is_binned_resampling(features, ref, frames_t):
    n = ref["num_frames"]
    for i, row in enumerate(features):
        if n == 0:
            if row.any():
                return False
            continue
        low, high = (i * n) // frames_t, min(-(-((i + 1) * n) // frames_t) - 1, n - 1)
        if not any(np.allclose(row, ref["matrix"][k], rtol=0, atol=ATOL) for k in range(low, max(low, high) + 1)):
            return False
    return True


# --------------------------------------------------------------------------
# (b) Against the YouTube-8M starter code's readers
# --------------------------------------------------------------------------

STARTER_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import numpy as np
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    sys.modules["tensorflow"] = tf.compat.v1
    config = json.loads(sys.argv[1])
    sys.path.insert(0, config["starter_dir"])
    import readers  # the starter code's

    tf1 = tf.compat.v1


    def serialized_records(files):
        return [record for path in files for record in tf1.io.tf_record_iterator(path)]


    def run(reader, serialized, batched, out_path):
        placeholder = tf1.placeholder(tf.string, [None] if batched else [])
        tensors = reader.prepare_serialized_examples(placeholder)
        with tf1.Session() as session:
            if batched:
                outputs = [session.run(tensors, {placeholder: serialized})]
            else:
                outputs = [session.run(tensors, {placeholder: record}) for record in serialized]
        arrays = {key: np.concatenate([o[key] for o in outputs]) for key in outputs[0]}
        arrays["video_ids"] = np.array([i.decode() for i in arrays["video_ids"]])
        np.savez(out_path, **arrays)


    for job in config["jobs"]:
        with tf1.Graph().as_default():
            if job["kind"] == "video":
                reader = readers.YT8MAggregatedFeatureReader(
                    num_classes=job["num_classes"], feature_sizes=[1024, 128], feature_names=["mean_rgb", "mean_audio"])
            else:
                reader = readers.YT8MFrameFeatureReader(
                    num_classes=job["num_classes"], feature_sizes=job["feature_sizes"],
                    feature_names=job["feature_names"], max_frames=job["max_frames"],
                    segment_labels=job["kind"] == "segment")
            run(reader, serialized_records(job["files"]), job["kind"] == "video", job["out"])
    print("DONE")
    """
)


def starter_dir_or_skip():
    starter_dir = os.environ.get("YT8M_STARTER_DIR")
    if not starter_dir:
        pytest.skip("YT8M_STARTER_DIR is not set (no YouTube-8M starter code copy)")
    if not os.path.isfile(os.path.join(starter_dir, "readers.py")):
        pytest.skip(f"YT8M_STARTER_DIR={starter_dir!r} has no readers.py")
    return starter_dir


def by_id(ids, *arrays):
    """Rows grouped by video id, in order: {id: [array rows of that id, ...]}."""
    grouped = {}
    for row, video_id in enumerate(ids):
        grouped.setdefault(video_id, []).append(row)
    return {video_id: [array[rows] for array in arrays] for video_id, rows in grouped.items()}


def test_agrees_with_youtube8m_starter_readers(data, tmp_path):
    starter_dir = starter_dir_or_skip()
    out = {name: str(tmp_path / f"{name}.npz") for name in ("frame", "frame_rgb", "segment", "video")}
    config = {
        "starter_dir": starter_dir,
        "jobs": [
            {"kind": "frame", "files": data["frame_files"], "num_classes": NUM_CLASSES, "max_frames": MAX_FRAMES,
             "feature_names": ["rgb", "audio"], "feature_sizes": [RGB_SIZE, AUDIO_SIZE], "out": out["frame"]},
            {"kind": "frame", "files": data["frame_files"], "num_classes": NUM_CLASSES, "max_frames": MAX_FRAMES,
             "feature_names": ["rgb"], "feature_sizes": [RGB_SIZE], "out": out["frame_rgb"]},
            {"kind": "segment", "files": [data["segment_file"]], "num_classes": NUM_CLASSES, "max_frames": 300,
             "feature_names": ["rgb", "audio"], "feature_sizes": [RGB_SIZE, AUDIO_SIZE], "out": out["segment"]},
            {"kind": "video", "files": [data["video_file"]], "num_classes": NUM_CLASSES, "out": out["video"]},
        ],
    }
    script = tmp_path / "starter_readers.py"
    script.write_text(STARTER_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(script), json.dumps(config)],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stderr[-3000:]
    theirs = {name: dict(np.load(path)) for name, path in out.items()}

    # Frame-level, video labels: one [1, max_frames, D] example per record.
    for name, feature_names in (("frame", ("rgb", "audio")), ("frame_rgb", ("rgb",))):
        starter = theirs[name]
        ours = collect(readers.frame_records(data["frame_files"], NUM_CLASSES, 3, feature_names, MAX_FRAMES))
        assert list(starter["video_ids"]) == [v["id"] for v in data["frame_videos"]]
        mine = by_id(decoded_ids(ours["video_ids"]), ours["labels"], ours["num_frames"], ours["video_matrix"])
        for row, video_id in enumerate(starter["video_ids"]):
            labels, num_frames, matrix = (a[0] for a in mine[video_id])
            np.testing.assert_array_equal(labels, starter["labels"][row].astype(np.float32), err_msg=video_id)
            assert num_frames == starter["num_frames"][row], video_id
            assert matrix.shape == starter["video_matrix"][row].shape
            np.testing.assert_allclose(matrix, starter["video_matrix"][row], rtol=0, atol=ATOL, err_msg=video_id)

    # Segment-rated: one example per distinct start time, per record.
    starter = theirs["segment"]
    ours = collect(readers.segment_records([data["segment_file"]], NUM_CLASSES, 4))
    assert decoded_ids(ours["video_ids"]) == list(starter["video_ids"])
    np.testing.assert_array_equal(ours["num_frames"], starter["num_frames"])
    np.testing.assert_allclose(ours["video_matrix"], starter["video_matrix"], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(ours["labels"], starter["labels"])
    np.testing.assert_array_equal(ours["label_weights"], starter["label_weights"])

    # Video-level.
    starter = theirs["video"]
    ours = collect(readers.video_level_records([data["video_file"]], NUM_CLASSES, 2))
    assert decoded_ids(ours["video_ids"]) == list(starter["video_ids"])
    np.testing.assert_array_equal(ours["labels"], starter["labels"].astype(np.float32))
    np.testing.assert_array_equal(ours["num_frames"], starter["num_frames"])
    np.testing.assert_array_equal(ours["video_matrix"], starter["video_matrix"])


def test_a_segment_past_the_last_frame_gets_zero_rows_as_in_the_starter_code(tmp_path):
    rng = np.random.default_rng(11)
    rgb, audio = random_frames(rng, 12)
    segments = {"segment_start_times": [10], "segment_end_times": [15], "segment_labels": [3], "segment_scores": [1.0]}
    path = write_records(tmp_path / "validate0000.tfrecord", [records.encode_frame_example("pe", [3], rgb, audio, segments)])
    out = collect(readers.segment_records([path], NUM_CLASSES, 4))
    expected = numpy_dequantize(np.concatenate([rgb, audio], axis=1))[10:12]
    np.testing.assert_allclose(out["video_matrix"][0, :2], expected, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(out["video_matrix"][0, 2:], 0.0)
    assert out["labels"][0, 3] == 1.0 and out["num_frames"].tolist() == [SEGMENT_SIZE]
