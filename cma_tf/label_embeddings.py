"""Writes a run's label embeddings `E` (`[N, C_e]`, `.npy`): `python -m cma_tf.label_embeddings
--config=… --workdir=… --output=E.npy`.

Builds (or loads) the label graph and fits ASGE (Eq. 2-5) exactly as `cma_tf.train` does,
cached in the same workdir, and saves `E = Φ(one-hot)` in inference mode. The YouTube-8M
starter-code model classes (`cma_tf/yt8m_starter/models.py`) read this file.

Example:
    python -m cma_tf.label_embeddings --config=configs/yt8m.py:cma_snet \\
        --workdir=runs/yt8m_cma_snet --output=runs/yt8m_cma_snet/label_embeddings.npy
"""

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (its data.* names the dataset, its asge.* the ASGE fit); overrides as in train."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir where the ASGE fit is cached (shared with cma_tf.train).")
_OUTPUT = flags.DEFINE_string("output", None, "The .npy file to write, float32 [N, C_e].")
flags.mark_flags_as_required(["config", "workdir", "output"])


def write_label_embeddings(config, workdir, output):
    """Fits (or loads) ASGE for `config`'s data in `workdir`; writes `E` to `output`; returns its shape."""
    import numpy as np
    import tensorflow as tf

    from cma_tf import factory
    from cma_tf.atomic import atomic_write
    from cma_tf.training.trainer import fit_or_load_asge, load_dataset_info

    factory.validate_config(config)  # before the label graph or the workdir is written
    _, graph = load_dataset_info(config)
    tf.io.gfile.makedirs(workdir)
    encoder = fit_or_load_asge(config, graph, workdir)
    embeddings = np.asarray(encoder.all_embeddings(training=False), np.float32)
    with atomic_write(output) as f:
        np.save(f, embeddings)
    return embeddings.shape


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    shape = cli.run_reporting_user_errors(write_label_embeddings, cli.config_value(_CONFIG), _WORKDIR.value, _OUTPUT.value)
    print(f"wrote {_OUTPUT.value}: label embeddings {shape[0]} × {shape[1]}")


if __name__ == "__main__":
    cli.run(main)
