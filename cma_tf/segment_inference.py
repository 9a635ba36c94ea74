"""Segment-level inference over YouTube-8M frame records → the Kaggle 2019 submission CSV.

Scores every 5-frame segment of every video in `--input` with a trained video model and
writes `Class,Segments` (per rated class, its best segments `<video id>:<start frame>` by
decreasing score), the format the starter code's `inference.py --segment_labels` writes.

The model is used with the config it was trained with (the workdir's `config.json`: frames T,
features, vocabulary); only where the data is can be given.

Example:
    python -m cma_tf.segment_inference --workdir=runs/yt8m_cma_snet \\
        --input='gs://my-bucket/yt8m/frame/test*.tfrecord' \\
        --segment_label_ids=segment_label_ids.csv --output=submission.csv
"""

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Optional (older command lines): the workdir's own config.json is used, not this file's values. "
    "Only its --config.<field>=… overrides are: data.data_dir, data.vocabulary (and data.label_graph, "
    "data.eval_split, train.eval_batch_size, unused here) apply; any other overridden field must equal "
    "the workdir's own value.",
)
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "The run's dataset, if it moved (default: the workdir's config.data.data_dir): its vocabulary, "
    "and the default --segment_label_ids beside it.",
)
_WORKDIR = flags.DEFINE_string("workdir", None, "The training workdir whose model scores the segments.")
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"], "Which model of the workdir: 'final' or 'best' (best val_GAP epoch)."
)
_INPUT = flags.DEFINE_string(
    "input", None, "Glob of frame-level TFRecords to score (local or gs://), e.g. '…/frame/test*.tfrecord'."
)
_SEGMENT_LABEL_IDS = flags.DEFINE_string(
    "segment_label_ids", None,
    "segment_label_ids.csv (header 'Index', then the rated class ids). Default: the file next to the "
    "vocabulary, i.e. <data_dir>/../segment_label_ids.csv or <data_dir>/segment_label_ids.csv.",
)
_OUTPUT = flags.DEFINE_string("output", None, "The submission CSV to write (atomically).")
_TOP_K = flags.DEFINE_integer("top_k", 20, "Classes of each segment that enter the per-class rankings.")
_MAX_PER_CLASS = flags.DEFINE_integer(
    "segment_max_pred", 100_000, "Segments kept per class (the Kaggle 2019 limit is 100,000)."
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Videos read per batch.")
flags.mark_flags_as_required(["workdir", "input", "output"])


def default_segment_label_ids(data_dir):
    from cma_tf.data.yt8m.vocabulary import SEGMENT_LABEL_IDS_FILENAME, first_existing, published_locations

    candidates = published_locations(data_dir, SEGMENT_LABEL_IDS_FILENAME)
    found = first_existing(candidates)
    if found is None:
        raise FileNotFoundError(f"no --segment_label_ids given and none found at {' or '.join(candidates)}")
    return found


def write_submission(workdir, input_pattern, output, segment_label_ids=None, checkpoint="final",
                     top_k=20, max_per_class=100_000, batch_size=64, progress=True, overrides=None):
    """Scores every segment of `input_pattern`'s videos and writes the CSV; returns a summary dict.

    The workdir's own config gives the frames and features; `overrides` (`{dotted field: value}`)
    only where the data is (see `workdir.evaluation_config`)."""
    import keras
    import tensorflow as tf
    from tqdm import tqdm

    from cma_tf import factory
    from cma_tf.data.yt8m import readers
    from cma_tf.data.record_files import describe_read_failure
    from cma_tf.data.yt8m.vocabulary import read_segment_label_ids
    from cma_tf.errors import ConfigError, DataError
    from cma_tf.serving.workdir_model import workdir_vocabulary
    from cma_tf.training import workdir as files
    from cma_tf.data.yt8m.submission import SegmentRanking, iterate_segment_scores

    config = files.evaluation_config(workdir, overrides)
    if config.data.format != "yt8m_frame":
        raise ConfigError(
            f"segment inference needs a frame-level model; {workdir} was trained on config.data.format="
            f"{config.data.format!r} data"
        )
    num_classes = len(workdir_vocabulary(workdir, config))
    class_ids = read_segment_label_ids(segment_label_ids or default_segment_label_ids(config.data.data_dir))
    if max(class_ids) >= num_classes:
        raise DataError(f"segment label id {max(class_ids)} is outside the {num_classes}-class vocabulary")
    record_files = sorted(tf.io.gfile.glob(input_pattern))
    if not record_files:
        raise DataError(f"--input: nothing matches {input_pattern}")
    # the run's format and features are fixed: the fix names --input, what this command can change
    factory.data_kind(config).check_run_records(config, record_files, workdir, "give --input such records")
    factory.check_record_kind(config, record_files)
    model = keras.saving.load_model(files.trained_model_path(workdir, checkpoint))
    videos = readers.frame_records(
        record_files, num_classes, batch_size, factory.feature_names(config), config.data.max_frames,
        feature_sizes=factory.feature_sizes(config),
    )
    ranking = SegmentRanking(num_classes, class_ids, top_k=top_k, max_per_class=max_per_class)
    segments = 0
    with tqdm(desc="segments", unit=" segments", disable=not progress) as bar:
        try:
            for segment_ids, scores in iterate_segment_scores(model, videos, config.data.frames):
                ranking.update(segment_ids, scores)
                segments += len(segment_ids)
                bar.update(len(segment_ids))
        except tf.errors.OpError as error:  # e.g. a truncated shard: name the file and record
            raise DataError(describe_read_failure(record_files, error)) from None
    ranking.write_csv(output)
    return {"segments": segments, "classes": len(class_ids), "output": output}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    overrides = cli.command_line_overrides(_CONFIG, (("data_dir", "data.data_dir"),))
    summary = cli.run_reporting_user_errors(
        write_submission, _WORKDIR.value, _INPUT.value, _OUTPUT.value, _SEGMENT_LABEL_IDS.value,
        _CHECKPOINT.value, _TOP_K.value, _MAX_PER_CLASS.value, _BATCH_SIZE.value, overrides=overrides,
    )
    print(f"scored {summary['segments']} segments; {summary['classes']} classes ranked in {summary['output']}")


if __name__ == "__main__":
    cli.run(main)
