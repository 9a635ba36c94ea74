"""Fixture datasets in each source's real on-disk layout, an independent TFRecord reader, and
the checks every converter's output goes through.

The reader below deliberately does not use `cma_tf.data.records`: it spells out its own feature
spec and decodes with `tf.io.decode_image`, so a mistake in the writer's format cannot hide
behind the same mistake in the project's parser.
"""

import collections
import csv
import dataclasses
import glob
import io
import json
import os
import re
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.helpers import reference_image_spec

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SKIPPING = ("bad_annotation", "missing_file", "unreadable_image", "no_labels")
ALL_REASONS = ("bad_annotation", "missing_file", "unreadable_image", "unknown_label", "no_labels")


# --------------------------------------------------------------------------- image files


def pixels(seed, width=32, height=24, channels=3):
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def save_image(path, seed=0, width=32, height=24, fmt="JPEG", mode="RGB"):
    """A small noise image; returns the exact RGB pixels a reader of `path` should see
    (for lossless formats) or None (JPEG)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(pixels(seed, width, height, 1 if mode == "L" else 3))
    if mode not in ("RGB", "L"):
        image = image.convert(mode)
    image.save(path, format=fmt)
    if fmt == "JPEG":
        return None
    with Image.open(path) as reread:
        return np.asarray(reread.convert("RGB"))


def save_random_bytes(path, seed=0, size=700):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())


def save_truncated_jpeg(path, seed=0):
    """The first half of a valid JPEG (header intact, scan data cut)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(pixels(seed, 48, 40)).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


# --------------------------------------------------------------------------- what a fixture holds


@dataclasses.dataclass
class Expected:
    """What a correct conversion of a fixture produces."""

    vocabulary: list
    written: dict  # source_id -> set of label names
    problems: list  # (source_id, reason), one per expected problem row
    listed: int  # images the source lists (written + skipped)
    raw: dict = dataclasses.field(default_factory=dict)  # source_id -> bytes stored unchanged
    reencoded: dict = dataclasses.field(default_factory=dict)  # source_id -> exact RGB pixels (stored as PNG)
    root: str = ""

    def without(self, reasons):
        """The expectation with the problem rows of some reasons removed."""
        return dataclasses.replace(self, problems=[p for p in self.problems if p[1] not in reasons])


# --------------------------------------------------------------------------- independent reader


@dataclasses.dataclass
class Record:
    source_id: str
    labels: list  # names, in stored order
    label_ids: list
    format: str
    height: int
    width: int
    encoded: bytes
    image: np.ndarray
    shard: str


def shard_files(out_dir, split):
    return sorted(glob.glob(os.path.join(out_dir, f"{split}-*-of-*.tfrecord")))


def read_vocabulary_file(out_dir):
    with open(os.path.join(out_dir, "labels.txt")) as f:
        return f.read().splitlines()


def raw_records(out_dir, split):
    """{shard name: [serialized example, ...]} read with tf.data."""
    import tensorflow as tf

    return {
        os.path.basename(path): [bytes(r.numpy()) for r in tf.data.TFRecordDataset(path)]
        for path in shard_files(out_dir, split)
    }


def read_split(out_dir, split):
    """Every record of the split, in shard order, parsed and decoded independently."""
    import tensorflow as tf

    vocabulary = read_vocabulary_file(out_dir)
    out = []
    for path in shard_files(out_dir, split):
        for serialized in tf.data.TFRecordDataset(path):
            example = tf.io.parse_single_example(serialized, reference_image_spec())
            encoded = bytes(example["image/encoded"].numpy())
            image = tf.io.decode_image(encoded, channels=0, expand_animations=False).numpy()
            ids = [int(i) for i in example["image/class/label"].values.numpy()]
            assert all(0 <= i < len(vocabulary) for i in ids), (path, ids)
            out.append(Record(
                source_id=example["image/source_id"].numpy().decode(),
                labels=[vocabulary[i] for i in ids],
                label_ids=ids,
                format=example["image/format"].numpy().decode(),
                height=int(example["image/height"].numpy()),
                width=int(example["image/width"].numpy()),
                encoded=encoded,
                image=image,
                shard=os.path.basename(path),
            ))
    return out


def read_problems(out_dir, split):
    with open(os.path.join(out_dir, f"{split}_problems.tsv"), newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert rows[0] == ["source_id", "path", "reason", "detail"], rows[0]
    assert all(len(row) == 4 for row in rows[1:]), rows
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def read_summary(out_dir, split):
    with open(os.path.join(out_dir, f"{split}_summary.json")) as f:
        return json.load(f)


def check_records(out_dir, split, expected: Expected):
    """The records hold exactly the expected images, labels, ids, sizes and bytes."""
    records = read_split(out_dir, split)
    assert read_vocabulary_file(out_dir) == list(expected.vocabulary)
    ids = [record.source_id for record in records]
    assert sorted(ids) == sorted(expected.written), (sorted(ids), sorted(expected.written))
    for record in records:
        assert len(record.label_ids) == len(set(record.label_ids)), record.source_id
        assert set(record.labels) == set(expected.written[record.source_id]), record.source_id
        assert record.image.ndim == 3 and record.image.shape[2] in (1, 3)
        assert (record.height, record.width) == record.image.shape[:2], record.source_id
        magic = {"jpeg": b"\xff\xd8", "png": b"\x89PNG"}
        assert record.format in magic and record.encoded.startswith(magic[record.format]), record.source_id
        if record.source_id in expected.raw:
            assert record.encoded == expected.raw[record.source_id], record.source_id
        if record.source_id in expected.reencoded:
            assert record.format == "png"
            np.testing.assert_array_equal(record.image, expected.reencoded[record.source_id])
    return records


def check_report(out_dir, split, expected: Expected, summary=None):
    """`{split}_summary.json` and `{split}_problems.tsv` agree with the fixture."""
    on_disk = read_summary(out_dir, split)
    if summary is not None:
        assert summary == on_disk
    reasons = collections.Counter(reason for _, reason in expected.problems)
    assert on_disk["split"] == split
    assert on_disk["images_listed"] == expected.listed
    assert on_disk["images_written"] == len(expected.written)
    assert on_disk["images_skipped"] == sum(reasons[r] for r in SKIPPING)
    assert on_disk["images_skipped"] + on_disk["images_written"] == expected.listed
    assert on_disk["problems"] == {reason: reasons.get(reason, 0) for reason in ALL_REASONS}
    per_class = collections.Counter(label for labels in expected.written.values() for label in set(labels))
    assert on_disk["per_class_counts"] == {name: per_class.get(name, 0) for name in expected.vocabulary}
    mean = np.mean([len(set(v)) for v in expected.written.values()]) if expected.written else 0.0
    assert on_disk["labels_per_image"] == pytest_approx(mean)
    assert on_disk["shards"] == len(shard_files(out_dir, split))
    rows = read_problems(out_dir, split)
    assert sorted((row["source_id"], row["reason"]) for row in rows) == sorted(expected.problems)
    for row in rows:
        if row["reason"] != "bad_annotation":
            assert row["path"], row
    return on_disk, rows


def pytest_approx(value):
    import pytest

    return pytest.approx(value)


def check_conversion(out_dir, split, expected: Expected, summary=None):
    records = check_records(out_dir, split, expected)
    on_disk, rows = check_report(out_dir, split, expected, summary)
    assert not [name for _, _, names in os.walk(out_dir) for name in names if ".tmp" in name]  # no temp file
    return records, on_disk, rows


# --------------------------------------------------------------------------- command lines


def run_cli(module, *args, cwd=REPO_ROOT):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", f"cma_tf.data.convert.{module}", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )


def assert_one_line_error(result, status, *fragments):
    """Exit `status`, and stderr's own message is a single `error: …` line, no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    ours = own_stderr_lines(result.stderr)
    assert len(ours) == 1 and ours[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in ours[0], ours[0]
    return ours[0]


_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"  # TensorFlow's C++ start-up
    r"|[IWE]\d{4} \d\d:\d\d:"  # absl C++ log lines (oneDNN, CUDA)
    r"|\S+ images: +\d+%\|)"  # the tqdm progress bar
)


def own_stderr_lines(stderr):
    """stderr without TensorFlow's C++ start-up chatter and the progress bar."""
    return [line for line in stderr.splitlines() if line.strip() and not _NOISE.match(line)]
