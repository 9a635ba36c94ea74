"""Builds a dataset's label graph: `python -m cma_tf.label_graph --data_dir=DIR [--split=train]`.

One streaming pass over `<data_dir>/<split>-*.tfrecord` reading only `image/class/label`
(memory `O(N²)`, whatever the number of images) gives the co-occurrence counts, `A`, `A'`
(Eq. 1) and the label frequencies `p_k` (Eq. 12); they are saved with the vocabulary as
`<data_dir>/label_graph_<split>.npz`, where `cma_tf.train` finds them (it builds the file
itself on first use when it is missing). Prints the most frequent labels and the strongest
conditional probabilities.
"""

from absl import flags

from cma_tf import cli

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Converted dataset: labels.txt and <split>-*.tfrecord shards.")
_SPLIT = flags.DEFINE_string("split", "train", "Split whose labels make the graph (the training split).")
_OUTPUT = flags.DEFINE_string("output", None, "Output .npz (default: <data_dir>/label_graph_<split>.npz).")
_TOP = flags.DEFINE_integer("top", 10, "How many labels and label pairs to print.")
flags.mark_flags_as_required(["data_dir"])


def build(data_dir, split, output, top):
    import numpy as np

    from cma_tf.data import records
    from cma_tf.data.vocab import read_vocabulary, vocabulary_path
    from cma_tf.graph.label_graph import default_graph_path, label_graph_from_records

    vocabulary = read_vocabulary(vocabulary_path(data_dir))
    graph = label_graph_from_records(records.list_shards(data_dir, split), len(vocabulary), vocabulary)
    path = output or default_graph_path(data_dir, split)
    graph.save(path)
    print(f"{path}: {graph.num_examples} examples, {graph.num_classes} labels")
    frequencies = graph.frequencies
    print("most frequent labels: " + ", ".join(
        f"{vocabulary[k]} {frequencies[k]:.3f}" for k in np.argsort(-frequencies)[:top]
    ))
    adjacency = graph.adjacency.copy()
    np.fill_diagonal(adjacency, 0)
    pairs = np.dstack(np.unravel_index(np.argsort(-adjacency, axis=None)[:top], adjacency.shape))[0]
    print("strongest P(i | j): " + ", ".join(
        f"P({vocabulary[i]} | {vocabulary[j]}) = {adjacency[i, j]:.2f}" for i, j in pairs
    ))


def main(argv):
    del argv
    cli.run_reporting_user_errors(build, _DATA_DIR.value, _SPLIT.value, _OUTPUT.value, _TOP.value)


if __name__ == "__main__":
    cli.run(main)
