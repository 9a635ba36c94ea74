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
    scale), one line per label, each position of the map drawn over the frames it covers.

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
        edges = np.linspace(0, frames, positions + 1)
        for index, label in labels:
            axis.stairs(maps[index], edges, label=f"{label}: {probabilities[index]:.2f}", linewidth=1.5)
        axis.set_xlim(0, frames)
        axis.set_ylabel(f"{name}\nattention", fontsize=9)
        axis.legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("frame")
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    _save(figure, path)
