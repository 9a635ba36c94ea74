"""Writes a run's label embeddings `E` (`[N, C_e]`, `.npy`): `python -m cma_tf.label_embeddings
--config=… --workdir=… --output=E.npy`.

Builds (or loads) the label graph and fits ASGE (Eq. 2-5) exactly as `cma_tf.train` does,
cached in the same workdir, and saves `E = Φ(one-hot)` in inference mode. A workdir holding a
trained run is only read: with other ASGE settings than its fit's (say, the run's overrides
left out) the command refuses rather than replace the embeddings the run was trained with. The YouTube-8M
starter-code model classes (`cma_tf/yt8m_starter/models.py`) read this file.

Example:
    python -m cma_tf.label_embeddings --config=configs/yt8m.py:cma_snet \\
        --workdir=runs/yt8m_cma_snet --output=runs/yt8m_cma_snet/label_embeddings.npy
"""

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli
from cma_tf.errors import ConfigError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Config file (its data.* names the dataset, its asge.* the ASGE fit); overrides as in train."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None,
    "Workdir where the ASGE fit is cached (shared with cma_tf.train). A trained run's fit is read, never refitted: "
    "give the run's own --config overrides, or another workdir.",
)
_OUTPUT = flags.DEFINE_string("output", None, "The .npy file to write, float32 [N, C_e].")
flags.mark_flags_as_required(["config", "workdir", "output"])


def write_label_embeddings(config, workdir, output):
    """Fits (or loads) ASGE for `config`'s data in `workdir`; writes `E` to `output`; returns its shape."""
    import numpy as np
    import tensorflow as tf

    from cma_tf import factory
    from cma_tf.atomic import atomic_write
    from cma_tf.graph.label_embeddings import fit_or_load_asge
    from cma_tf.training.trainer import load_dataset_info

    factory.validate_config(config)  # before the label graph or the workdir is written
    _, graph = load_dataset_info(config)
    check_trained_fit(config, graph, workdir)
    tf.io.gfile.makedirs(workdir)
    encoder = fit_or_load_asge(config, graph, workdir)
    embeddings = np.asarray(encoder.all_embeddings(training=False), np.float32)
    with atomic_write(output) as f:
        np.save(f, embeddings)
    return embeddings.shape


# What the ASGE cache's settings (`graph.label_embeddings.asge_settings`) are called in messages.
SETTING_NAMES = {"num_labels": "the number of labels", "graph_sha1": "the label graph (its SHA-1)", "seed": "seed"}


def check_trained_fit(config, graph, workdir):
    """A `ConfigError` when `workdir` holds a trained run (a finished epoch or model) whose ASGE fit
    (`asge/`) was made with other settings than `config`'s: refitting would replace the
    embeddings the run's model was trained with."""
    from cma_tf.graph.label_embeddings import asge_settings, cached_asge_settings
    from cma_tf.training import workdir as files

    cached = cached_asge_settings(workdir)
    if cached is None or not files.has_trained_state(workdir):
        return
    wanted = asge_settings(config, graph)
    differ = [key for key in sorted(set(cached) | set(wanted)) if cached.get(key) != wanted.get(key)]
    if differ:
        shown = "; ".join(
            f"{SETTING_NAMES.get(key, 'asge.' + key)} {wanted.get(key)!r} here, {cached.get(key)!r} in the run"
            for key in differ
        )
        raise ConfigError(
            f"--workdir={workdir} holds a trained run whose ASGE fit ({files.ASGE_REPORT}) has other settings ({shown}): "
            f"give the run's own overrides (its {files.CONFIG}) to write its embeddings, or another --workdir to fit "
            "these settings there; a trained run's embeddings are never replaced"
        )


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    shape = cli.run_reporting_user_errors(write_label_embeddings, cli.config_value(_CONFIG), _WORKDIR.value, _OUTPUT.value)
    print(f"wrote {_OUTPUT.value}: label embeddings {shape[0]} × {shape[1]}")


if __name__ == "__main__":
    cli.run(main)
