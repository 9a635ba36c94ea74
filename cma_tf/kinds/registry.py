"""The kinds of data a config can name (`config.data.format`), one file per kind.

A data kind is everything that depends on what the records are: where a split's files are,
how the vocabulary is read, how labels are parsed for the label graph (Eq. 1), the input
pipeline, the evaluation metrics and the one that picks `best.keras`, which backbones read
it and what a served model's requests look like. `cma_tf.factory` asks the kind of
`config.data.format` for each of these, so a new kind is one file under `cma_tf/kinds/` that
subclasses `DataKind` and calls `register_kind`.
"""

from typing import Optional

from cma_tf.data import vocab
from cma_tf.data.yt8m import validate as yt8m_validate
from cma_tf.errors import ConfigError
from cma_tf.registry import Registry

KINDS = Registry("cma_tf.kinds", "config.data.format", "format")


class DataKind:
    """The base of every data kind; subclasses set the attributes and the abstract methods.

    Attributes:
        name: the value of `config.data.format`.
        backbones: the `config.model.backbone` names that read this kind's inputs.
        metric_keys: what the validation callback logs as `val_<key>` each epoch.
        summary_keys: the columns `train` and `evaluate` print.
        full_keys: the columns of `evaluate --full`.
        monitor: the metric (one of `metric_keys`, higher is better) that picks `best.keras`.
        labels_field: the record field holding the label ids (for error messages).
        supports_eval_segments: whether `config.data.eval_segments` (rated segments) applies.
        reads_images: whether the inputs are images (attention grids over the picture).
        items: what one input is, in messages and reports ("images", "videos").
    """

    name = ""
    backbones = ()
    metric_keys = ()
    summary_keys = ()
    full_keys = ()
    monitor = ""
    labels_field = ""
    supports_eval_segments = False
    reads_images = False
    items = "examples"

    def validate(self, config) -> None:
        """Kind-specific config checks, before any data is read (`ConfigError`)."""

    def cache_dir(self, config) -> str:
        """Where the training label graph is cached (`label_graph_<split>.npz`): the data's own
        directory, `config.data.data_dir`."""
        if not config.data.data_dir:
            raise ConfigError("config.data.data_dir is empty: point it at a converted dataset")
        return config.data.data_dir

    def source(self, config) -> str:
        """The data's name in messages ("split 'val' of <source>")."""
        return config.data.data_dir

    def list_files(self, config, split) -> list:
        """The record files of `split` (a `FileNotFoundError` naming the pattern if none)."""
        raise NotImplementedError

    def read_vocabulary(self, config) -> list:
        """Label names: `config.data.vocabulary`, else `<data_dir>/labels.txt`."""
        return read_vocabulary_file(config.data.vocabulary or vocab.vocabulary_path(config.data.data_dir))

    def label_parser(self, config):
        """Serialized records → sparse label ids for the streaming label graph, or None for the
        graph builder's own image parser."""
        return None

    def bad_label_record(self, config, files, num_classes) -> Optional[str]:
        """After the label pass failed: the record it failed on, if the graph builder did not
        already name it (None)."""
        return None

    def first_bad_record(self, config, files, num_classes) -> Optional[str]:
        """After a failed read: one line naming the first unusable record of `files`, or None."""
        return None

    def non_finite_record(self, config, files) -> Optional[str]:
        """After non-finite scores or loss: one line naming the first record of `files` whose
        inputs are NaN or infinite, or None (this kind's inputs cannot be, or none is)."""
        return None

    def describe_read_error(self, files, error) -> Optional[str]:
        """The message for a read error no record scan could place (None: re-raise it as is)."""
        return None

    def check_records(self, config, num_classes) -> None:
        """Before any work (the label graph, training): a `DataError` naming the first record of
        the training or evaluation split that could not be trained or evaluated on, from a
        bounded scan (YouTube-8M: `config.data.check_records` records of each shard)."""

    def evaluates_segments(self, config) -> bool:
        """Whether evaluation reads rated segments rather than whole examples."""
        return False

    def evaluation_unit(self, config) -> str:
        """What evaluation scores one row of (`items`, or "rated segments"): tables and metric
        files say it, as a GAP of segments and one of videos are different measures."""
        return "rated segments" if self.evaluates_segments(config) else self.items

    def list_run_files(self, config, split, run, fix) -> list:
        """The record files of `split` for the trained run `run` (evaluation): as `list_files`,
        with `check_run_records`'s message when they are not the records the run was trained on."""
        return self.list_files(config, split)

    def check_run_records(self, config, files, run, fix) -> None:
        """Before the trained run `run` reads `files`: a `DataError` when they are not the kind
        of records (or lack a feature) it was trained on, ending with `fix`, what the command
        can change (its config is the run's), e.g. "point --data_dir at such records"."""

    def check_eval_split(self, config, split, files) -> None:
        """A `DataError` before any training when the evaluation split has no labels (or no rated
        segments) in its first records, e.g. a published `test` split: its metrics would be
        zero or NaN and `best.keras` chosen on them."""
        data = config.data
        labelled = [name for name in yt8m_validate.other_splits(data.data_dir, split, "test") if name != data.train_split]
        example = f" (--config.data.eval_split={labelled[0]})" if labelled else ""
        yt8m_validate.check_labelled(
            files, split, segments=self.evaluates_segments(config), field=self.labels_field,
            fix=f"set config.data.eval_split to a labelled split{example}",
            segments_fix=(
                "evaluate on its video-level labels with --config.data.eval_segments=False, or on the 2019 "
                "segment-rated records"
            ),
        )

    def input_shape(self, config) -> tuple:
        """One model input without the batch axis (what the backbone is built for)."""
        raise NotImplementedError

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        """The input pipeline over `files`: `(inputs, multi_hot)` batches (or, for rated segments,
        `(inputs, scores, mask)`)."""
        raise NotImplementedError

    def metrics(self, scores, targets) -> dict:
        """The paper's metrics of this kind, from `σ(logits)` and 0/1 targets."""
        raise NotImplementedError

    def serving_request(self, config):
        """The `cma_tf.data.requests.RequestFormat` a served model of this kind reads."""
        raise NotImplementedError


def read_vocabulary_file(path, unique=True):
    """A YouTube-8M `vocabulary.csv` (by its extension) or a one-name-a-line file, validated."""
    if path.endswith(".csv"):
        from cma_tf.data.yt8m.vocabulary import read_yt8m_vocabulary

        return read_yt8m_vocabulary(path)
    return vocab.read_vocabulary(path, unique=unique)


def register_kind(kind):
    """Registers the `DataKind` instance `kind` under `kind.name`; returns it."""
    return KINDS.register(kind.name, kind)


def get_kind(name) -> DataKind:
    """The kind of `name`; a `ConfigError` naming the registered formats otherwise."""
    return KINDS.get(name)


def kind_names():
    """Every registered data kind, sorted."""
    return KINDS.names()
