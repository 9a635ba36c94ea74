"""YouTube-8M records as published (`cma_tf/data/yt8m/records.py`): frame-level
`SequenceExample`s (`config.data.format="yt8m_frame"`) and video-level `Example`s
(`"yt8m_video"`), read as the starter code reads them; GAP, Hit@1, PERR and mAP (§4.2)."""

import os

import tensorflow as tf

from cma_tf.data import requests, vocab
from cma_tf.data.yt8m import finite, readers
from cma_tf.data.yt8m import validate as yt8m_validate
from cma_tf.data.yt8m.vocabulary import VOCABULARY_FILENAME, first_existing, published_locations
from cma_tf.errors import ConfigError, DataError
from cma_tf.kinds.registry import DataKind, get_kind, read_vocabulary_file, register_kind
from cma_tf.metrics import video as video_metrics

# Where the published YouTube-8M records come from (the download script and the buckets).
DOWNLOAD_PAGE = "https://research.google.com/youtube8m/download.html"


def _first_record_kind(files):
    """The kind (`yt8m_validate.FRAME_LEVEL`, …) of the first record of `files`, or None."""
    for _, _, raw in yt8m_validate.first_records(files, 1):
        return yt8m_validate.summarize(raw).kind
    return None


class YouTube8MKind(DataKind):
    """What frame-level and video-level records share; `record_kind` tells them apart."""

    record_kind = ""  # yt8m_validate.FRAME_LEVEL or VIDEO_LEVEL
    other = ""  # the name of the other YouTube-8M kind, for the error on mixed-up records
    backbones = ("snet", "fc", "frames")
    metric_keys = summary_keys = full_keys = video_metrics.REPORT_KEYS
    monitor = "GAP"
    labels_field = yt8m_validate.records.LABELS
    items = "videos"

    def feature_names(self, config) -> tuple:
        """`config.data.feature_names` as a tuple, a comma-separated entry split as the starter
        code's `--feature_names=rgb,audio` (`--config.data.feature_names=rgb,audio` arrives as the
        one name "rgb,audio"); a `ConfigError` naming the valid names of the format otherwise."""
        given = config.data.feature_names
        given = [given] if isinstance(given, str) else list(given or ())
        names = tuple(part.strip() for entry in given for part in str(entry).split(",") if part.strip())
        valid = yt8m_validate.FEATURES_OF_KIND[self.record_kind]
        unknown = [name for name in names if name not in valid]
        if unknown or not names or len(set(names)) != len(names):
            problem = f"unknown {', '.join(map(repr, unknown))}" if unknown else (
                "none given" if not names else f"a name repeats in {', '.join(names)}")
            raise ConfigError(
                f"config.data.feature_names: {problem}; config.data.format={self.name!r} ({self.record_kind} "
                f"records) has {', '.join(valid)} (e.g. --config.data.feature_names={','.join(valid)})"
            )
        return names

    def feature_sizes(self, config) -> dict:
        """Each feature's size: `config.data.feature_sizes` (the published sizes by default;
        other extractors give other sizes), checked to be whole numbers ≥ 1."""
        given = config.data.get("feature_sizes") or {}
        given = given.to_dict() if hasattr(given, "to_dict") else dict(given)
        for name, size in given.items():
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(
                    f"config.data.feature_sizes.{name}={size!r}: give the number of values a frame of '{name}' "
                    f"holds (a whole number ≥ 1; published: {readers.records.FEATURE_SIZES.get(name, 'none')})"
                )
        return readers.feature_sizes_of(given)

    def validate(self, config):
        self.feature_names(config)
        self.feature_sizes(config)
        count = config.data.get("check_records", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(
                f"config.data.check_records={count!r}: give the records of each shard to check before training "
                "(a whole number; 0 skips the check)"
            )

    def check_records(self, config, num_classes):
        """Before any work: the first `config.data.check_records` records of every shard of the
        training and evaluation splits (feature sizes, empty videos, label ids; the evaluation
        split's rated segments when they are evaluated), one line naming the first bad record."""
        count = config.data.check_records
        if not count:
            return
        data = config.data
        for split, segments in ((data.train_split, False), (data.eval_split, self.evaluates_segments(config))):
            yt8m_validate.check_records(
                self.list_files(config, split), count, self.record_kind, self.feature_names(config),
                self.feature_sizes(config), num_classes, segments=segments, max_frames=data.max_frames,
            )

    def list_files(self, config, split):
        """The `<split>*.tfrecord` files; also a `DataError` when the first record is not of this
        kind (frame-level vs video-level) or lacks a feature of `config.data.feature_names`."""
        files = readers.list_record_files(config.data.data_dir, split)
        self.check_record_kind(config, files)
        return files

    def check_record_kind(self, config, files):
        """Reads the first record of `files`: the one-line error, saying which folder and format
        to use, when frame-level records are given to a `yt8m_video` config or the reverse (and
        to use an image config when they are image records)."""
        own = self.record_kind.split("-")[0]  # "frame" or "video"
        if _first_record_kind(files) == yt8m_validate.IMAGE:
            fix = (
                "these are images: train on them with an image config (config.data.format='image', e.g. "
                f"--config=configs/demo.py:cma), or point config.data.data_dir at YouTube-8M {own}-level records"
            )
        else:
            other_features = ",".join(yt8m_validate.FEATURES_OF_KIND[get_kind(self.other).record_kind])
            fix = (
                f"point config.data.data_dir at the {own}-level records (the published {own}/ folder), or read "
                f"these with --config.data.format={self.other} --config.data.feature_names={other_features}"
            )
        try:
            names = self.feature_names(config)
        except ConfigError:
            names = ()  # `validate` reports them; the label graph command reads only the labels
        yt8m_validate.check_kind(
            files, self.record_kind, names, f"config.data.format={self.name!r}", fix, "config.data.feature_names",
        )

    def list_run_files(self, config, split, run, fix):
        files = readers.list_record_files(config.data.data_dir, split)
        self.check_run_records(config, files, run, fix)
        self.check_record_kind(config, files)
        return files

    def check_run_records(self, config, files, run, fix):
        """The first record of `files` is of the run's kind and has the run's features; the
        message says what the run was trained on and ends with `fix` (the command's own flag:
        the run's format and features are fixed)."""
        names = self.feature_names(config)
        trained_on = (
            f"{run} was trained on {yt8m_validate.DESCRIPTIONS[self.record_kind].split(' (')[0]} with "
            f"{', '.join(names)}: {fix} (the published {self.record_kind.split('-')[0]}/ folder)"
        )
        for path, index, raw in yt8m_validate.first_records(files, 1):
            found = yt8m_validate.summarize(raw)
            if found.kind != self.record_kind:
                raise DataError(f"{path} holds {yt8m_validate.DESCRIPTIONS[found.kind]}, but {trained_on}")
            missing = [name for name in names if name not in found.features]
            if missing:
                raise DataError(
                    f"{path}: record {index} (id {found.video_id!r}) has no feature {', '.join(map(repr, missing))} "
                    f"(it has {', '.join(found.features) or 'none'}), but {trained_on}"
                )

    def read_vocabulary(self, config):
        """`config.data.vocabulary`, else `<data_dir>/labels.txt`, else `<data_dir>/vocabulary.csv`
        or the one in its parent (the published layout keeps it beside `frame/` and `video/`)."""
        data = config.data
        if data.vocabulary:
            return read_vocabulary_file(data.vocabulary)
        if not tf.io.gfile.exists(data.data_dir):
            raise DataError(self.missing_data_dir(data.data_dir))
        candidates = [vocab.vocabulary_path(data.data_dir)] + published_locations(data.data_dir, VOCABULARY_FILENAME)
        return read_vocabulary_file(first_existing(candidates) or candidates[1])

    def missing_data_dir(self, data_dir):
        """The message for a `config.data.data_dir` that does not exist: how to make or get it."""
        own = self.record_kind.split("-")[0]  # "frame" or "video"
        parent = os.path.dirname(os.path.normpath(data_dir))
        out_dir = parent if os.path.basename(os.path.normpath(data_dir)) == own and parent else "<folder>"
        return (
            f"config.data.data_dir={data_dir} does not exist: make a small synthetic dataset with "
            f"`python -m cma_tf.datasets.yt8m_synthetic --out_dir={out_dir}` (it writes {out_dir}/{own}/ and its "
            f"vocabulary.csv), or download the published {own}-level records ({DOWNLOAD_PAGE}) and point "
            "config.data.data_dir at their folder"
        )

    def label_parser(self, config):
        frame_level = self.record_kind == yt8m_validate.FRAME_LEVEL
        return lambda serialized: readers.parse_labels(serialized, frame_level=frame_level)

    def bad_label_record(self, config, files, num_classes):
        return self.first_bad_record(config, files, num_classes)

    def first_bad_record(self, config, files, num_classes):
        """The first record with a label id outside the vocabulary."""
        return yt8m_validate.first_label_outside(
            files, num_classes, frame_level=self.record_kind == yt8m_validate.FRAME_LEVEL,
            segments=bool(config.data.eval_segments),
        )

    def describe_read_error(self, files, error):
        return f"reading the YouTube-8M records {files}: {' '.join(error.message.split())}"

    def input_frames(self, config) -> int:
        """`T` of video models."""
        raise NotImplementedError

    def input_shape(self, config):
        return (self.input_frames(config), readers.feature_size(self.feature_names(config), self.feature_sizes(config)))

    def metrics(self, scores, targets):
        return video_metrics.video_metrics(scores, targets)


class FrameLevelKind(YouTube8MKind):
    """`(frames [B, T, D], multi_hot [B, N])`: each video's first `max_frames` frames resampled to
    `T = config.data.frames`; with `config.data.eval_segments`, evaluation reads the rated
    5-frame segments as `(segment frames, rated scores, rated mask)`."""

    name = "yt8m_frame"
    other = "yt8m_video"
    record_kind = yt8m_validate.FRAME_LEVEL
    supports_eval_segments = True

    def evaluates_segments(self, config):
        return bool(config.data.eval_segments)

    def input_frames(self, config):
        return config.data.frames

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        data, features = config.data, self.feature_names(config)
        if data.eval_segments and not training:
            segments = readers.segment_records(
                files, num_classes, batch_size, features, deterministic=data.deterministic, max_frames=data.max_frames,
                feature_sizes=self.feature_sizes(config),
            )
            return segments.map(
                lambda batch: (readers.segment_inputs(batch, data.frames), batch["labels"], batch["label_weights"])
            )
        return readers.make_frame_dataset(
            files, num_classes, data.frames, batch_size, training, features, data.max_frames, seed=seed,
            shuffle_buffer=data.shuffle_buffer, deterministic=data.deterministic, repeat=repeat,
            input_context=input_context, feature_sizes=self.feature_sizes(config),
        )

    def serving_request(self, config):
        return requests.frame_request(
            config.data.frames, self.feature_names(config), config.data.max_frames, self.feature_sizes(config)
        )


class VideoLevelKind(YouTube8MKind):
    """`(features [B, 1, D], multi_hot [B, N])`: one row of mean features per video (`T = 1`)."""

    name = "yt8m_video"
    other = "yt8m_frame"
    record_kind = yt8m_validate.VIDEO_LEVEL

    def input_frames(self, config):
        return 1

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        data = config.data
        return readers.make_video_level_dataset(
            files, num_classes, batch_size, training, self.feature_names(config), seed=seed,
            shuffle_buffer=data.shuffle_buffer, deterministic=data.deterministic, repeat=repeat,
            input_context=input_context, feature_sizes=self.feature_sizes(config),
        )

    def serving_request(self, config):
        return requests.video_level_request(self.feature_names(config), self.feature_sizes(config))

    def non_finite_record(self, config, files):
        return finite.first_non_finite(files, self.feature_names(config))


register_kind(FrameLevelKind())
register_kind(VideoLevelKind())
