"""Builds a dataset's label graph: `python -m cma_tf.label_graph --data_dir=DIR [--split=train]`.

One streaming pass over `<data_dir>/<split>-*.tfrecord` reading only `image/class/label`
(or, with `--format=yt8m_frame|yt8m_video`, the `labels` of YouTube-8M `<split>*.tfrecord`)
(memory `O(N²)`, whatever the number of images) gives the co-occurrence counts, `A`, `A'`
(Eq. 1) and the label frequencies `p_k` (Eq. 12); they are saved with the vocabulary as
`<data_dir>/label_graph_<split>.npz`, where `cma_tf.train` finds them. It always counts again,
even over an existing file. The file records a fingerprint of the shards (each file's name,
size and modification time) and of the vocabulary; `cma_tf.train` reuses it while they are
unchanged and rebuilds it itself (saying so) when they change or when the file is missing, so
running this first is optional. Prints the most frequent labels and the strongest
conditional probabilities.
"""

from absl import flags

from cma_tf import cli

_DATA_DIR = flags.DEFINE_string(
    "data_dir", None,
    "Converted dataset: labels.txt and <split>-*.tfrecord shards; or YouTube-8M <split>*.tfrecord files "
    "with vocabulary.csv beside them or in the parent folder.",
)
_FORMAT = flags.DEFINE_string(
    "format", "image",
    "Record format, a data kind of cma_tf/kinds/ (as config.data.format): image (image Examples), "
    "yt8m_frame / yt8m_video (YouTube-8M frame-level SequenceExamples / video-level Examples).",
)
_SPLIT = flags.DEFINE_string("split", "train", "Split whose labels make the graph (the training split).")
_OUTPUT = flags.DEFINE_string(
    "output", None,
    "Output .npz (default: <data_dir>/label_graph_<split>.npz, where cma_tf.train looks; elsewhere, give it "
    "to training as --config.data.label_graph). Always rewritten.",
)
_TOP = flags.DEFINE_integer("top", 10, "How many labels and label pairs to print.")
flags.mark_flags_as_required(["data_dir"])


def build(data_dir, split, output, top, data_format="image"):
    import numpy as np
    import scipy.sparse

    from cma_tf import factory
    from cma_tf.config_base import get_base_config
    from cma_tf.graph.cooccurrence import build_label_graph, default_graph_path

    config = get_base_config()
    config.data.data_dir, config.data.format = data_dir, data_format
    vocabulary = factory.read_vocabulary(config)
    graph = build_label_graph(
        factory.list_data_files(config, split), len(vocabulary), vocabulary, parse_labels=factory.label_parser(config)
    )
    path = output or default_graph_path(data_dir, split)
    graph.save(path)
    print(f"{path}: {graph.num_examples} examples, {graph.num_classes} labels")
    frequencies = graph.frequencies
    print("most frequent labels: " + ", ".join(
        f"{vocabulary[k]} {frequencies[k]:.3f}" for k in np.argsort(-frequencies)[:top]
    ))
    cells = scipy.sparse.coo_matrix(graph.adjacency)  # (sparse or dense A alike)
    off = cells.row != cells.col
    rows, cols, values = cells.row[off], cells.col[off], cells.data[off]
    strongest = np.argsort(-values, kind="stable")[:top]
    print("strongest P(i | j): " + ", ".join(
        f"P({vocabulary[rows[k]]} | {vocabulary[cols[k]]}) = {values[k]:.2f}" for k in strongest
    ))


def main(argv):
    del argv
    cli.run_reporting_user_errors(build, _DATA_DIR.value, _SPLIT.value, _OUTPUT.value, _TOP.value, _FORMAT.value)


if __name__ == "__main__":
    cli.run(main)
