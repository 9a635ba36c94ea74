"""Trains a CMA / MS-CMA / baseline classifier: `python -m cma_tf.train --config=… --workdir=…`.

Builds (or loads) the label graph of the training split, fits ASGE, trains the classifier
with `model.fit` (checkpoints, TensorBoard and a CSV history in the workdir; a killed run
resumes from its last epoch when started again with the same workdir), evaluates the best
checkpoint on the eval split and writes `metrics.json`.

Example:
    python -m cma_tf.train --config=configs/demo.py:ms_cma --workdir=runs/demo/ms_cma \
        --config.train.epochs=5
"""

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Path to a config file under configs/, optionally with ':<variant>' (e.g. configs/demo.py:cma). "
    "Any field can be overridden: --config.train.epochs=5 --config.data.data_dir=/data/coco.",
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Directory for this run's checkpoints, TensorBoard logs, history.csv and metrics.json. "
    "Re-using it resumes an interrupted run.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cma_tf.metrics.report import format_metrics_table
    from cma_tf.training.trainer import train_and_evaluate

    config = cli.config_value(_CONFIG)
    metrics = cli.run_reporting_user_errors(train_and_evaluate, config, _WORKDIR.value)
    print(format_metrics_table({config.model.head: metrics}))


if __name__ == "__main__":
    cli.run(main)
