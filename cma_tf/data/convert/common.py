"""What every dataset converter shares: image checks, label mapping, sharded parallel writing
that resumes, and the report of everything that was not written as given.

A converter turns its source's layout into a list of `SourceImage`s (file, id, label names)
and a vocabulary, then calls `convert_split`, which writes `{split}-NNNNN-of-NNNNN.tfrecord`
shards in the format of `records.py` plus `labels.txt`:

- Each shard is one task for a worker process and is written atomically (temp name, then
  rename), followed by its own small report under `.convert/`; a re-run skips every shard
  whose file and report both exist and whose images and vocabulary are unchanged (a
  fingerprint in the report), so an interrupted conversion resumes where it stopped
  and Ctrl-C never leaves half a shard behind.
- Bad input does not stop the run: a missing file, a file that is not a decodable image, a
  label outside the vocabulary and an image left with no labels are each counted and listed
  with the reason in `{split}_problems.tsv`; `strict=True` turns any of them into a non-zero
  exit, after everything else has been written. Only `max_dropped` stops it, when more of the
  rows are skipped than it allows (nothing is written, or the split is removed again).
- An image whose source names no label is skipped (`no_labels`) unless `keep_empty`
  (the CSV converter's default: such rows are the negatives of the data set).
- An image's pixels are `decode.decode_rgb`'s, the ones `predict` serves for the same file
  (docs/design.md §3.1 "Pixels"): 8-bit gray and RGB JPEG and PNG are stored as they are, every
  other image (16-bit, palette, alpha, CMYK; GIF, BMP, WebP, TIFF, …) as a PNG of its pixels.
- Every split of a directory shares its `labels.txt`: a split converted into a directory that
  has one uses it (`choose_vocabulary`), and a conversion that would change it is refused, so
  converting `val` can never change what the label ids of the `train` shards mean.
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import io
import json
import multiprocessing
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from cma_tf.atomic import atomic_write, write_text
from cma_tf.data import decode, records
from cma_tf.data.convert.checks import (
    dropped_share_error,
    labels_missing_from_train,
    spelling_variant_warnings,
    strip_vocabulary,
)
from cma_tf.data.vocab import first_difference, read_vocabulary, vocabulary_path, write_vocabulary
from cma_tf.errors import DataError

MISSING_FILE = "missing_file"
UNREADABLE_IMAGE = "unreadable_image"
UNKNOWN_LABEL = "unknown_label"
NO_LABELS = "no_labels"
BAD_ANNOTATION = "bad_annotation"
REASONS = {
    BAD_ANNOTATION: "the image's annotation is missing or malformed (skipped)",
    MISSING_FILE: "the image file does not exist (skipped)",
    UNREADABLE_IMAGE: "the file is not a decodable image (skipped)",
    UNKNOWN_LABEL: "a label is not in the vocabulary (the label is dropped, the image kept)",
    NO_LABELS: "the image has no label in the vocabulary (skipped)",
}
SKIPPING_REASONS = (BAD_ANNOTATION, MISSING_FILE, UNREADABLE_IMAGE, NO_LABELS)
STORED_FORMATS = {"JPEG": "jpeg", "PNG": "png"}
STORED_MODES = ("RGB", "L")  # 8-bit; other modes are stored as a PNG of their converted pixels
STATE_DIR = ".convert"


@dataclasses.dataclass(frozen=True)
class SourceImage:
    """One image as the source lists it: its file, its id there, its label names."""

    path: str
    source_id: str
    labels: tuple


@dataclasses.dataclass(frozen=True)
class Problem:
    """An image the converter could not write as given, and why."""

    source_id: str
    path: str
    reason: str
    detail: str


class ConversionError(RuntimeError):
    """`strict=True` and some input was bad; the report file lists it."""


def read_image(path: str):
    """`(bytes, format, height, width)` ready for a record, or raises `ValueError` saying why.

    The pixels are `decode.decode_rgb`'s, the ones `predict` serves for the same file: 8-bit
    gray or RGB JPEG and PNG are stored as they are (the training pipeline decodes them with the
    same op), everything else as a PNG of those pixels.
    """
    with open(path, "rb") as f:
        data = f.read()
    pixels = decode.decode_rgb(data)  # decodes fully: truncated files fail here, not during training
    height, width = pixels.shape[:2]
    image_format = decode.graph_format(data)
    if image_format in STORED_FORMATS and _mode(data) in STORED_MODES:
        return data, STORED_FORMATS[image_format], height, width
    return decode.png_bytes(pixels), "png", height, width


def _mode(data: bytes) -> str:
    """PIL's mode of an image ("RGB", "L", "P", "I;16", …) read from its header; "" if PIL
    cannot open it."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.mode
    except Exception:  # noqa: BLE001 - PIL raises many types for headers it does not read
        return ""


def encode_source_image(image: SourceImage, label_ids: Dict[str, int], keep_empty: bool = False):
    """`(serialized example or None, problems)` for one image. With `keep_empty`, an image
    whose source names no label is written with none (a negative for every label); one whose
    labels are all outside the vocabulary is skipped as `no_labels` either way."""
    problems = []
    ids = []
    for name in dict.fromkeys(image.labels):  # unique, in order
        if name in label_ids:
            ids.append(label_ids[name])
        else:
            problems.append(Problem(image.source_id, image.path, UNKNOWN_LABEL, f"label {name!r}"))
    if not os.path.exists(image.path):
        return None, problems + [Problem(image.source_id, image.path, MISSING_FILE, "")]
    try:
        data, image_format, height, width = read_image(image.path)
    except (ValueError, OSError) as error:
        return None, problems + [Problem(image.source_id, image.path, UNREADABLE_IMAGE, str(error))]
    if not ids and (image.labels or not keep_empty):
        return None, problems + [Problem(image.source_id, image.path, NO_LABELS, "")]
    serialized = records.encode_image_example(data, image_format, height, width, image.source_id, ids)
    return (serialized, ids), problems


@dataclasses.dataclass
class ShardTask:
    out_dir: str
    split: str
    index: int
    count: int
    images: List[SourceImage]
    label_ids: Dict[str, int]
    keep_empty: bool = False

    @property
    def shard_path(self):
        return records.shard_path(self.out_dir, self.split, self.index, self.count)

    @property
    def report_path(self):
        name = os.path.basename(self.shard_path).replace(".tfrecord", ".json")
        return os.path.join(self.out_dir, STATE_DIR, name)

    def fingerprint(self) -> str:
        """What the shard's content depends on: its images (files, ids, labels) and the label
        ids. A finished shard is reused only if this matches, so a re-run with another image
        list, or with another vocabulary after labels.txt was deleted, cannot keep stale records."""
        listing = [[image.path, image.source_id, list(image.labels)] for image in self.images]
        text = json.dumps([listing, sorted(self.label_ids.items()), self.keep_empty], ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def convert_shard(task: ShardTask) -> dict:
    """Writes one shard and its report; returns the report. A finished shard is not redone."""
    fingerprint = task.fingerprint()
    if os.path.exists(task.shard_path) and os.path.exists(task.report_path):
        with open(task.report_path) as f:
            report = json.load(f)
        if report.get("fingerprint") == fingerprint:
            return report
    serialized, label_lists, problems = [], [], []
    for image in task.images:
        encoded, image_problems = encode_source_image(image, task.label_ids, task.keep_empty)
        problems.extend(image_problems)
        if encoded is not None:
            serialized.append(encoded[0])
            label_lists.append(encoded[1])
    records.write_shard(task.shard_path, serialized)
    report = {
        "shard": os.path.basename(task.shard_path),
        "fingerprint": fingerprint,
        "images": len(task.images),
        "written": len(serialized),
        "label_lists": label_lists,
        "problems": [dataclasses.asdict(problem) for problem in problems],
    }
    write_text(task.report_path, json.dumps(report))
    return report


def plan_shards(images: Sequence[SourceImage], out_dir, split, num_shards, label_ids, keep_empty=False) -> List[ShardTask]:
    """Contiguous, equal-sized slices of the image list, one per shard (deterministic)."""
    num_shards = max(1, min(num_shards, len(images)))
    bounds = np.linspace(0, len(images), num_shards + 1).astype(int)
    return [
        ShardTask(out_dir, split, index, num_shards, list(images[bounds[index]:bounds[index + 1]]), label_ids,
                  keep_empty)
        for index in range(num_shards)
    ]


def _remove_stale_shards(out_dir, split, num_shards):
    """Shards of this split written with another shard count would mix into its glob."""
    keep = {os.path.basename(records.shard_path(out_dir, split, i, num_shards)) for i in range(num_shards)}
    for name in os.listdir(out_dir):
        if name.startswith(f"{split}-") and name.endswith(".tfrecord") and name not in keep:
            os.remove(os.path.join(out_dir, name))


def summarize(split: str, vocabulary: Sequence[str], reports: Sequence[dict]) -> dict:
    """Images written and skipped (by reason), labels per image, per-class counts."""
    problems = [problem for report in reports for problem in report["problems"]]
    reasons = collections.Counter(problem["reason"] for problem in problems)
    label_lists = [labels for report in reports for labels in report["label_lists"]]
    per_class = np.zeros(len(vocabulary), np.int64)
    for labels in label_lists:
        per_class[labels] += 1
    written = sum(report["written"] for report in reports)
    return {
        "split": split,
        "images_listed": sum(report["images"] for report in reports),
        "images_written": written,
        "images_skipped": sum(reasons[reason] for reason in SKIPPING_REASONS),
        "problems": {reason: reasons.get(reason, 0) for reason in REASONS},
        "labels_per_image": float(np.mean([len(labels) for labels in label_lists])) if label_lists else 0.0,
        "images_without_labels": sum(1 for labels in label_lists if not labels),
        "per_class_counts": {name: int(count) for name, count in zip(vocabulary, per_class)},
    }


def write_problem_report(path: str, reports: Sequence[dict]) -> int:
    """`source_id, path, reason, detail` rows (TSV, with a header); returns the row count."""
    rows = [problem for report in reports for problem in report["problems"]]
    with atomic_write(path, "w") as f:
        f.write("source_id\tpath\treason\tdetail\n")
        for row in rows:
            cells = [str(row[key]).replace("\t", " ").replace("\n", " ") for key in ("source_id", "path", "reason", "detail")]
            f.write("\t".join(cells) + "\n")
    return len(rows)


def _existing_vocabulary(out_dir: str):
    path = vocabulary_path(out_dir)
    return read_vocabulary(path) if os.path.exists(path) else None


def choose_vocabulary(out_dir: str, derived: Sequence[str], given_file: Optional[str] = None, log=print) -> list:
    """The vocabulary to convert a split into `out_dir` with, so that all its splits share one.

    - `given_file` (`--vocabulary`) is used if `<out_dir>/labels.txt` does not exist or holds
      the same names in the same order; otherwise the conversion is refused. Spaces around
      its names are removed (with a line to `log`), as around the labels converters read.
    - Without it, an existing `<out_dir>/labels.txt` is used (labels outside it are then
      reported as `unknown_label`), and `log` gets one line saying so.
    - Else `derived`, the vocabulary the converter read from its input.

    Raises:
        DataError: `given_file` differs from `<out_dir>/labels.txt`, or names a label twice
            once stripped.
    """
    existing_file = vocabulary_path(out_dir)
    existing = _existing_vocabulary(out_dir)
    if given_file:
        given = strip_vocabulary(given_file, read_vocabulary(given_file), log)
        if existing is not None and given != existing:
            raise DataError(
                f"--vocabulary={given_file} differs from {existing_file} ({first_difference(existing, given)}), "
                f"the vocabulary of the splits already converted into {out_dir}: leave --vocabulary out or "
                f"give that file, convert into another --out_dir, or delete {existing_file} and re-convert every split"
            )
        return given
    if existing is not None:
        log(f"using the existing vocabulary {existing_file} ({len(existing)} labels) shared by every split in "
            f"{out_dir}; labels outside it are reported as unknown_label (to change it, delete it and "
            "re-convert every split)")
        return existing
    return list(derived)


def _drops_known_before_writing(images, label_ids, keep_empty, listing_problems):
    """`(counts, first)`: the rows that will be dropped for reasons seen without decoding an
    image (malformed rows, missing files, no label in the vocabulary), per reason, and the
    first `(source_id, detail)` of each."""
    counts, first = collections.Counter(), {}

    def drop(reason, source_id, detail=""):
        counts[reason] += 1
        first.setdefault(reason, (source_id, detail))

    for problem in listing_problems:
        drop(problem.reason, problem.source_id, problem.detail)
    for image in images:
        if not os.path.exists(image.path):
            drop(MISSING_FILE, image.source_id, f"no file {image.path}")
        elif not any(name in label_ids for name in image.labels) and (image.labels or not keep_empty):
            drop(NO_LABELS, image.source_id, f"labels {list(image.labels)} outside the vocabulary" if image.labels else "")
    return {reason: counts[reason] for reason in SKIPPING_REASONS}, first


def _first_problems(reports):
    """Per reason, `(source_id, detail)` of its first problem in the reports."""
    first = {}
    for problem in (problem for report in reports for problem in report["problems"]):
        first.setdefault(problem["reason"], (problem["source_id"], problem["detail"] or problem["path"]))
    return first


def _remove_split_output(out_dir, split, tasks, made_dir, made_vocabulary):
    """Removes what a refused conversion of `split` left: its shards and their reports, its
    summary and problem report, and `labels.txt` / `out_dir` if this conversion made them.
    The other splits of `out_dir` are not touched."""
    paths = [task.shard_path for task in tasks] + [task.report_path for task in tasks]
    paths += [os.path.join(out_dir, f"{split}_summary.json"), os.path.join(out_dir, f"{split}_problems.tsv")]
    if made_vocabulary:
        paths.append(vocabulary_path(out_dir))
    for path in paths:
        if os.path.exists(path):
            os.remove(path)
    if made_dir:
        for directory in (os.path.join(out_dir, STATE_DIR), out_dir):
            if os.path.isdir(directory) and not os.listdir(directory):
                os.rmdir(directory)


def convert_split(
    images: Sequence[SourceImage],
    vocabulary: Sequence[str],
    out_dir: str,
    split: str,
    num_shards: int = 8,
    num_workers: Optional[int] = None,
    strict: bool = False,
    progress: bool = True,
    listing_problems: Sequence[Problem] = (),
    keep_empty: bool = False,
    max_dropped: Optional[float] = None,
    notes: Optional[dict] = None,
    warnings: Sequence[str] = (),
) -> dict:
    """Writes `images` as the shards of `split` in `out_dir`; returns the summary.

    `listing_problems` are the images the source's reader already had to drop (a malformed
    annotation, say); they join the report and the counts.

    `vocabulary` must be the one of `<out_dir>/labels.txt` if that exists (see
    `choose_vocabulary`): the splits already there use its ids.

    Args:
        keep_empty: write images whose source names no label, with none (default: skip them
            as `no_labels`, the paper datasets' protocol); the summary counts them
            (`images_without_labels`).
        max_dropped: the largest share of the listed rows that may be skipped (None: no limit).
            Checked before anything is written for the reasons known then (malformed rows,
            missing files, no label in the vocabulary), and again after writing, when the
            split's output is removed again.
        notes: counts of the source's reader for the summary (rows it left out on request).
        warnings: the reader's warnings; the summary's `warnings` adds the conversion's own
            (labels spelled two ways, labels missing from the `train` split).

    Raises:
        DataError: `<out_dir>/labels.txt` holds another vocabulary, or `vocabulary` is empty or
            repeats a name (before anything is written); more than `max_dropped` of the rows
            are dropped.
        ConversionError: if `strict` and any image had a problem (after writing the rest).
    """
    from tqdm.auto import tqdm

    vocabulary = list(vocabulary)
    vocab_file = vocabulary_path(out_dir)
    existing = _existing_vocabulary(out_dir)
    if existing is not None and existing != vocabulary:
        raise DataError(
            f"{vocab_file} holds another vocabulary ({first_difference(existing, vocabulary)}) than the one given "
            f"for split '{split}'; converting with it would change what the label ids of the splits already in "
            f"{out_dir} mean: convert with that vocabulary, into another directory, or delete {vocab_file} and "
            "re-convert every split"
        )
    label_ids = {name: index for index, name in enumerate(vocabulary)}
    listed = len(images) + len(listing_problems)
    refusal = dropped_share_error(*_drops_known_before_writing(images, label_ids, keep_empty, listing_problems),
                                  listed, max_dropped, split, written=False)
    if refusal:
        raise DataError(refusal)
    made_dir = not os.path.exists(out_dir)
    os.makedirs(os.path.join(out_dir, STATE_DIR), exist_ok=True)
    if existing is None:
        write_vocabulary(vocab_file, vocabulary)
    tasks = plan_shards(images, out_dir, split, num_shards, label_ids, keep_empty)
    _remove_stale_shards(out_dir, split, len(tasks))
    num_workers = num_workers or min(len(tasks), os.cpu_count() or 1)

    reports = [None] * len(tasks)
    with tqdm(total=len(images), desc=f"{split} images", unit=" img", disable=not progress) as bar:
        if num_workers <= 1:
            for index, task in enumerate(tasks):
                reports[index] = convert_shard(task)
                bar.update(len(task.images))
        else:
            # spawn, not fork: the parent may have TensorFlow's threads running.
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as pool:
                futures = {pool.submit(convert_shard, task): index for index, task in enumerate(tasks)}
                try:
                    for future in concurrent.futures.as_completed(futures):
                        reports[futures[future]] = future.result()
                        bar.update(len(tasks[futures[future]].images))
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise

    if listing_problems:
        reports.append({
            "shard": None, "images": len(listing_problems), "written": 0, "label_lists": [],
            "problems": [dataclasses.asdict(problem) for problem in listing_problems],
        })
    summary = summarize(split, vocabulary, reports)
    refusal = dropped_share_error({reason: summary["problems"][reason] for reason in SKIPPING_REASONS},
                                  _first_problems(reports), summary["images_listed"], max_dropped, split, written=True)
    if refusal:
        _remove_split_output(out_dir, split, tasks, made_dir, existing is None)
        raise DataError(refusal)
    summary["shards"] = len(tasks)
    summary["problem_report"] = os.path.join(out_dir, f"{split}_problems.tsv")
    summary.update(notes or {})
    names = {name for image in images for name in image.labels} | set(vocabulary)
    summary["warnings"] = (list(warnings) + spelling_variant_warnings(sorted(names))
                           + labels_missing_from_train(out_dir, split, summary["per_class_counts"]))
    write_problem_report(summary["problem_report"], reports)
    write_text(os.path.join(out_dir, f"{split}_summary.json"), json.dumps(summary))
    if strict and sum(summary["problems"].values()):
        raise ConversionError(
            f"{sum(summary['problems'].values())} problems in split '{split}' (strict mode): "
            f"see {summary['problem_report']}"
        )
    return summary
