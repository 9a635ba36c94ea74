"""The inputs the runner hands the starter code's `segment_eval_inference.py`, written so that
its Python 2 code reads them right under Python 3 (the script itself runs unchanged).

The script scores a segment submission (`Class,Segments`, from `inference.py --segment_labels`
or `python -m cma_tf.segment_inference`) against the rated segments of `--eval_data_pattern`:
per class, its ranked segments that are rated for that class get the scores n/n, (n−1)/n, …,
and the starter's `MeanAveragePrecisionCalculator` averages the classes' APs. Run directly under
Python 3 it gets four things wrong, fixed here on its inputs, in a temporary folder:

1. Ground truth: its `read_labels` keys each rated segment by `"%s:%d" % (video id, start)`
   with the id as bytes, i.e. `b'Ab3x':5`, which no submission id matches (mAP 0). The runner
   reads the rated segments itself (`rated_segments`) and passes them as the script's own
   `--label_cache` file (its `Labels.to_file` format, `<id>:<start>,<class>,<rating>`), which
   the script reads instead of the records.
2. The `Class,Segments` header line that `inference.py` writes: `int("Class")` fails. The
   script gets a copy of the submission without it.
3. Each line keeps its newline when split on spaces, so the last segment id of every class
   reads `Ab3x:5\n`, matches no rated segment and is dropped. The copy ends each line with a
   space before the newline: the last token is then `\n` alone, rated nowhere, and dropped
   without effect (the ranks are counted after that filtering).
4. A class of the submission with no positive rating in the data stops the script with a
   `KeyError` (`positive_counter[label_id]`); its calculator would leave such a class out of
   the mean (`filter_empty_classes`). The copy leaves those classes out, and the runner says
   which on stderr; the script's "Num classes" counts the rest.

(`tf.gfile` and `tf.logging` come from the runner's TF1 shim.)
"""

import os
import sys

import tensorflow as tf

from cma_tf.data.yt8m import records
from cma_tf.errors import ConfigError, DataError

HEADER = "Class,Segments"


def rated_segments(files):
    """`(segment id "<video id>:<start>", class, rating)` of every rated segment, in record order."""
    context_features = {
        records.ID: tf.io.FixedLenFeature([], tf.string),
        records.SEGMENT_LABELS: tf.io.VarLenFeature(tf.int64),
        records.SEGMENT_START_TIMES: tf.io.VarLenFeature(tf.int64),
        records.SEGMENT_SCORES: tf.io.VarLenFeature(tf.float32),
    }
    rows = []
    for path in files:
        for index, serialized in enumerate(tf.data.TFRecordDataset(path)):
            try:
                context, _ = tf.io.parse_single_sequence_example(serialized, context_features=context_features)
            except tf.errors.OpError as error:
                raise DataError("%s record %d: not a segment-rated SequenceExample (%s)"
                                % (path, index, error.message.splitlines()[0]))
            video_id = context[records.ID].numpy().decode("utf-8")
            columns = (context[key].values.numpy() for key in
                       (records.SEGMENT_START_TIMES, records.SEGMENT_LABELS, records.SEGMENT_SCORES))
            rows.extend(("%s:%d" % (video_id, start), int(label), float(score))
                        for start, label, score in zip(*columns))
    return rows


def write_label_cache(path, rows):
    """`rows` in the format of the script's `Labels.to_file` (which `Labels.from_file` reads)."""
    with tf.io.gfile.GFile(path, "w") as f:
        f.write("".join("%s,%d,%s\n" % row for row in rows))


def copy_submission(source, target, positive_classes):
    """Copies the submission `source` to `target` as the script can read it (items 2-4 of the
    module docstring); returns the class ids left out for having no positive rating."""
    left_out = []
    with tf.io.gfile.GFile(source, "r") as f:
        lines = f.read().splitlines()
    with tf.io.gfile.GFile(target, "w") as out:
        for number, line in enumerate(lines, 1):
            if number == 1 and line.strip() == HEADER:
                continue
            class_id, separator, _ = line.partition(",")
            if not separator or not class_id.strip().isdigit():
                raise DataError("--submission_file=%s line %d: expected '<class id>,<segment ids>' "
                                "(the Class,Segments CSV of inference.py --segment_labels), got %r"
                                % (source, number, line[:60]))
            if int(class_id) not in positive_classes:
                left_out.append(int(class_id))
                continue
            out.write(line + " \n")
    return left_out


def prepare(flag_values, folder):
    """Points the script's flags at inputs written in `folder` (see the module docstring)."""
    if flag_values.label_cache:
        raise ConfigError("--label_cache: leave it unset; the runner reads the rated segments of "
                          "--eval_data_pattern itself (the script's own reader keys them by b'…' ids "
                          "under Python 3) and hands them to the script as its label cache")
    if not flag_values.submission_file:
        raise ConfigError("--submission_file is required: the Class,Segments CSV of inference.py "
                          "--segment_labels or python -m cma_tf.segment_inference")
    if not tf.io.gfile.exists(flag_values.submission_file):
        raise ConfigError("--submission_file=%s: no such file" % flag_values.submission_file)
    files = sorted(tf.io.gfile.glob(flag_values.eval_data_pattern)) if flag_values.eval_data_pattern else []
    if not files:
        raise ConfigError("--eval_data_pattern=%r matches no file: give the segment-rated frame-level "
                          "records (e.g. validate*.tfrecord)" % flag_values.eval_data_pattern)
    rows = rated_segments(files)
    if not rows:
        raise DataError("--eval_data_pattern=%s: no rated segments in %d file(s) (segment_labels "
                        "and segment_scores are empty)" % (flag_values.eval_data_pattern, len(files)))
    label_cache = os.path.join(folder, "label_cache.csv")
    write_label_cache(label_cache, rows)
    submission = os.path.join(folder, "submission.csv")
    left_out = copy_submission(flag_values.submission_file, submission,
                               {label for _, label, score in rows if score > 0})
    if left_out:
        print("segment_eval_inference: classes %s of %s have no positive rating in %s and are left out "
              "(the script would stop on them; its mAP leaves such classes out)"
              % (", ".join(map(str, left_out)), flag_values.submission_file, flag_values.eval_data_pattern),
              file=sys.stderr)
    flag_values.label_cache = label_cache
    flag_values.submission_file = submission
