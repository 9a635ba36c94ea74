"""`python -m cma_tf.visualize embeddings`: a run's label embeddings against the graph they were
fitted to, ASGE's loss curve, and a 2-D view, as PNG files."""

import os

import numpy as np
import tensorflow as tf

from cma_tf.errors import ConfigError
from cma_tf.training import workdir as files
from cma_tf.visualization.embeddings import cluster_order, cosine_similarity, project_2d
from cma_tf.visualization.figures import embedding_scatter, loss_curve, similarity_maps

SIMILARITY, LOSS, PROJECTION = "embeddings_similarity.png", "asge_loss.png", "embeddings_2d.png"
SPARSE_GRAPH_SHOWN = 1000  # labels drawn from a sparse graph (cooccurrence.DENSE_MAX_LABELS and up)


def write_embedding_figures(workdir, out_dir, checkpoint="final"):
    """Writes the figures into `out_dir`; returns `({name: path}, rmse, pearson)`: the files written
    (no loss curve for a run fitted before ASGE kept it) and the fit of `cos(e_i, e_j)` to `A'`
    off the diagonal. `E` is what the run's head used: its trained model's label encoder
    (fine-tuned embeddings included), else the run's ASGE fit."""
    from cma_tf.graph.label_embeddings import fit_or_load_asge
    from cma_tf.training.trainer import load_dataset_info

    config = files.read_config(workdir)
    vocabulary, graph = load_dataset_info(config)
    embeddings = None
    model_path = files.trained_model_path(workdir, checkpoint)
    if tf.io.gfile.exists(model_path):
        import keras

        head = keras.saving.load_model(model_path).head
        if hasattr(head, "label_embeddings"):
            embeddings = np.asarray(head.label_embeddings(training=False))
    if embeddings is None:
        if not tf.io.gfile.exists(files.path(workdir, files.ASGE_WEIGHTS)):
            raise ConfigError(
                f"{workdir}: its head ({config.model.head}) reads no label embeddings and the run has no ASGE fit "
                f"({files.ASGE_WEIGHTS}) to show"
            )
        embeddings = np.asarray(fit_or_load_asge(config, graph, workdir).all_embeddings(training=False))
    shown = f"{len(vocabulary)} labels"
    if graph.is_sparse:  # thousands of labels: the heat maps and the fit over the most frequent
        keep = np.sort(np.argsort(-graph.frequencies, kind="stable")[:SPARSE_GRAPH_SHOWN])
        target = graph.symmetric_adjacency[keep][:, keep].toarray().astype(np.float64)
        embeddings, vocabulary = embeddings[keep], [vocabulary[k] for k in keep]
        shown = f"the {len(keep)} most frequent of {graph.num_classes} labels"
    else:
        target = np.asarray(graph.symmetric_adjacency, np.float64)
    learned = cosine_similarity(embeddings)
    order = cluster_order(target)
    tf.io.gfile.makedirs(out_dir)
    paths = {name: os.path.join(out_dir, name) for name in (SIMILARITY, LOSS, PROJECTION)}
    off = ~np.eye(len(target), dtype=bool)
    rmse = float(np.sqrt(np.mean((learned[off] - target[off]) ** 2)))
    pearson = float(np.corrcoef(learned[off], target[off])[0, 1]) if off.any() else float("nan")
    similarity_maps(target, learned, vocabulary, order, paths[SIMILARITY],
                    title=f"{workdir}: {shown}, off-diagonal RMSE {rmse:.3f}, Pearson r {pearson:.3f}")
    embedding_scatter(project_2d(embeddings), vocabulary, paths[PROJECTION], title=f"{workdir}: label embeddings")
    report_path = files.path(workdir, files.ASGE_REPORT)
    curve = files.read_json(report_path).get("loss_curve") if tf.io.gfile.exists(report_path) else None
    if curve:
        loss_curve(curve, paths[LOSS], title=f"{workdir}: ASGE fit")
    else:
        del paths[LOSS]
    return paths, rmse, pearson
