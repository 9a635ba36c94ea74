"""Trains a CMA / MS-CMA / baseline classifier: `python -m cma_tf.train --config=… --workdir=…`.

Builds (or loads) the label graph of the training split, fits ASGE, trains the classifier
with `model.fit` (checkpoints, TensorBoard and a CSV history in the workdir; a killed run
resumes at the epoch it was in when started again with the same workdir), evaluates the final
model on the eval split and writes `metrics.json`. A workdir keeps the config it was started
with (`config.json`): running another config in it is refused, naming the fields that differ.

Example:
    python -m cma_tf.train --config=configs/demo.py:ms_cma --workdir=runs/demo/ms_cma --config.train.epochs=5
    python -m cma_tf.train --config=configs/coco.py:ms_cma --workdir=runs/coco_ms_cma --dry_run
    python -m cma_tf.train --config=configs/yt8m.py:cma_snet --workdir=runs/yt8m_cma_snet \
        --config.data.data_dir=gs://my-bucket/yt8m/frame
"""

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli
from cma_tf.heads.registry import describe_heads

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Path to a config file under configs/, optionally with ':<variant>' (e.g. configs/demo.py:cma). "
    "Any field can be overridden: --config.train.epochs=5 --config.data.data_dir=/data/coco. "
    f"The heads (--config.model.head): {describe_heads()}.",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Directory for this run's config.json, checkpoints, TensorBoard logs, history.csv and metrics.json. "
    "Re-using it resumes an interrupted run (or re-evaluates a finished one) with the config it was "
    "started with: another config is refused, except for a new train.epochs (interrupted runs), "
    "data.data_dir, data.vocabulary, data.label_graph or train.eval_batch_size.",
)
_STRATEGY = flags.DEFINE_enum(
    "strategy", "auto", ["auto", "one_device", "mirrored", "multi_worker"],
    "tf.distribute strategy. auto: MirroredStrategy over all GPUs when there are 2 or more, else "
    "one device. mirrored: all local GPUs (model.fit). multi_worker: MultiWorkerMirroredStrategy "
    "over the cluster in TF_CONFIG, trained by a custom loop that runs the same train_step "
    "(Keras' fit does not run under it: keras-team/keras#20585).",
)
_MIXED_PRECISION = flags.DEFINE_enum(
    "mixed_precision", None, ["bfloat16", "float16"],
    "Compute in bfloat16 or float16 with float32 variables (float16 with dynamic loss scaling); "
    "the same as --config.train.mixed_precision.",
)
_DRY_RUN = flags.DEFINE_bool(
    "dry_run", False,
    "Build everything, train 2 steps, evaluate 2 batches: checks a config (against the workdir's, if "
    "any) and data fast. Writes only <workdir>/dry_run/ (replaced by each dry run), so the real run "
    "in --workdir starts afresh.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cma_tf.training.strategy import make_strategy

    # First: MultiWorkerMirroredStrategy must configure collectives before any TF op runs.
    strategy = make_strategy(_STRATEGY.value)
    from cma_tf import factory
    from cma_tf.metrics.report import format_metrics_table
    from cma_tf.training.trainer import train_and_evaluate

    config = cli.config_value(_CONFIG)
    if _MIXED_PRECISION.value:
        config.train.mixed_precision = _MIXED_PRECISION.value
    print(f"strategy: {type(strategy).__name__} with {strategy.num_replicas_in_sync} replica(s)")
    metrics = cli.run_reporting_user_errors(
        train_and_evaluate, config, _WORKDIR.value, strategy=strategy, dry_run=_DRY_RUN.value
    )
    if metrics:
        print(format_metrics_table({flags.FLAGS[_CONFIG.name].config_filename.split(":", 1)[-1]: metrics}, factory.data_kind(config).summary_keys))


if __name__ == "__main__":
    cli.run(main, interrupted_hint="run the same command again: it resumes from the last finished epoch in --workdir")
