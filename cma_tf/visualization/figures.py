"""The pictures of `python -m cma_tf.visualize`: attention grids for images (the paper's Fig. 4)
and attention over time for videos (Fig. 5), written as PNG files atomically."""

import io

import numpy as np

from cma_tf.atomic import write_bytes
from cma_tf.visualization.attention import normalize, overlay, upsample


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    _pyplot().close(figure)
    write_bytes(path, buffer.getvalue())


def attention_grid(image, rows, labels, path, title=""):
    """One image's attention, label by label: a PNG with the image on the left, then one column
    per label; one row per map (a workdir's scale), each map upsampled to the image, normalised
    to its own range and laid over it.

    Args:
        image: float `[S, S, 3]` in 0..255, the pixels the first row's model saw.
        rows: `[(name, probabilities [N], maps [N, h, w])]`.
        labels: `[(index, name)]` of the labels to show, in order.
        path: the PNG to write.
    """
    plt = _pyplot()
    size = image.shape[0]
    figure, axes = plt.subplots(
        len(rows), len(labels) + 1, figsize=(2.1 * (len(labels) + 1), 2.3 * len(rows) + 0.4), squeeze=False
    )
    for row, (name, probabilities, maps) in enumerate(rows):
        axes[row, 0].imshow(np.asarray(image, np.uint8))
        axes[row, 0].set_ylabel(name, fontsize=9)
        if row == 0:
            axes[row, 0].set_title("input", fontsize=9)
        for column, (index, label) in enumerate(labels, start=1):
            heat = normalize(upsample(maps[index], size))
            axes[row, column].imshow(overlay(image, heat))
            axes[row, column].set_title(f"{label}: {probabilities[index]:.2f}", fontsize=9)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def attention_over_time(frames, rows, labels, path, title=""):
    """One video's attention over its frames, label by label: one panel per map (a workdir's
    scale), one line per label, each position of the map drawn over the frames it covers. A map
    of one position (SNet reduces 16 frames or fewer to one; video-level features are one) has
    nothing over time: its panel says so instead of drawing flat lines.

    Args:
        frames: int, the frames the model read (`T`).
        rows: `[(name, probabilities [N], maps [N, T_s])]`.
        labels: `[(index, name)]`.
        path: the PNG to write.
    """
    plt = _pyplot()
    figure, axes = plt.subplots(len(rows), 1, figsize=(8, 2.4 * len(rows) + 0.4), squeeze=False)
    for axis, (name, probabilities, maps) in zip(axes[:, 0], rows):
        positions = maps.shape[-1]
        if positions == 1:
            scores = ", ".join(f"{label}: {probabilities[index]:.2f}" for index, label in labels)
            axis.text(0.5, 0.5, f"one position: the model reduced the {frames} frames to one, so each label's attention "
                      f"is one value, not a course over time\n(more positions need more frames, config.data.frames)"
                      f"\n{scores}", ha="center", va="center", fontsize=9, transform=axis.transAxes)
            axis.set_ylabel(name, fontsize=9)
            axis.set_yticks([])
            continue
        edges = np.linspace(0, frames, positions + 1)
        for index, label in labels:
            axis.stairs(maps[index], edges, label=f"{label}: {probabilities[index]:.2f}", linewidth=1.5)
        axis.set_xlim(0, frames)
        axis.set_ylabel(f"{name}\nattention", fontsize=9)
        axis.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("frame")
    axes[-1, 0].set_xlim(0, frames)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def similarity_maps(target, learned, names, order, path, title=""):
    """`A'` (the graph ASGE fits) beside the learned `cos(e_i, e_j)`, both in `order`, on one
    colour scale; label names on the axes up to 60 labels."""
    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    count = len(order)
    for axis, matrix, name in zip(axes, (target, learned), ("A' (co-occurrence, Eq. 1)", "cos(e_i, e_j) learned")):
        image = axis.imshow(np.asarray(matrix)[np.ix_(order, order)], cmap="viridis", vmin=min(0.0, float(np.min(learned))),
                            vmax=1.0, interpolation="nearest")
        axis.set_title(name, fontsize=10)
        if count <= 60:
            axis.set_xticks(range(count), [names[i] for i in order], rotation=90, fontsize=max(4, 9 - count // 10))
            axis.set_yticks(range(count), [names[i] for i in order], fontsize=max(4, 9 - count // 10))
        else:
            axis.set_xticks([])
            axis.set_yticks([])
    figure.colorbar(image, ax=axes, shrink=0.8)
    if title:
        figure.suptitle(title, fontsize=10)
    _save(figure, path)


def loss_curve(curve, path, title=""):
    """ASGE's training loss against its steps (log scale)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 3.6))
    curve = np.asarray(curve, np.float64)
    axis.plot(curve[:, 0], curve[:, 1], linewidth=1.5)
    if np.all(curve[:, 1] > 0):
        axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("ASGE loss (Eq. 4), mean per stretch")
    axis.grid(alpha=0.3)
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)


def embedding_scatter(points, names, path, title=""):
    """The label embeddings on two axes, each point named (up to 200 names)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(7, 6))
    axis.scatter(points[:, 0], points[:, 1], s=12, color="#1f77b4")
    if len(names) <= 200:
        for (x, y), name in zip(points, names):
            axis.annotate(name, (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
    axis.set_xlabel("first principal axis of the unit embeddings")
    axis.set_ylabel("second principal axis")
    if title:
        axis.set_title(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)
