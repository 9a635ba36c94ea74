"""`python -m cma_tf.visualize`: attention maps land on the right pixels (a synthetic image with
objects at known places, through a model whose attention follows colour), the figures of a
trained run on image files, what is refused; the embedding views (clustering order, cosine and
projection against scikit-learn, the command's files)."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from cma_tf import factory
from cma_tf.config_base import get_base_config
from cma_tf.heads.self_attention import SelfAttentionHead
from cma_tf.models.classifier import MultiLabelClassifier
from cma_tf.serving.workdir_model import load_workdir_model
from cma_tf.training import workdir as files
from cma_tf.visualization.attention import NoAttentionError, attention_maps, normalize, overlay, upsample
from cma_tf.visualization.attention_figures import write_attention_figures
from cma_tf.visualization.embeddings import cluster_order, cosine_similarity, project_2d
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS
from tests.serving.conftest import encode, random_image

SIZE, CELL = 32, 8  # a 4 × 4 grid of 8-pixel cells
RED_CELL, GREEN_CELL = (1, 2), (3, 0)


def colour_model():
    """A classifier whose 'backbone' averages 8 × 8 pixel cells and whose self-attention head
    attends to red for label 0 and to green for label 1: its maps are known from the image."""
    images = keras.Input((SIZE, SIZE, 3))
    backbone = keras.Model(images, keras.layers.AveragePooling2D(CELL)(images))
    head = SelfAttentionHead(2)
    model = MultiLabelClassifier(backbone, head)
    kernel = np.array([[1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]], np.float32) * 0.1  # [C=3, N=2]
    head.attention.score_conv.kernel.assign(kernel)
    head.attention.score_conv.bias.assign(np.zeros(2, np.float32))
    return model


def object_image():
    image = np.full((SIZE, SIZE, 3), 128.0, np.float32)
    (r, c), (g, h) = RED_CELL, GREEN_CELL
    image[r * CELL:(r + 1) * CELL, c * CELL:(c + 1) * CELL] = (255, 0, 0)
    image[g * CELL:(g + 1) * CELL, h * CELL:(h + 1) * CELL] = (0, 255, 0)
    return image


def test_the_maps_and_overlays_land_on_the_objects():
    image = object_image()
    probabilities, maps = attention_maps(colour_model(), image[None])
    assert probabilities.shape == (1, 2) and len(maps) == 1 and maps[0].shape == (1, 2, 4, 4)
    for label, (row, column) in enumerate((RED_CELL, GREEN_CELL)):
        grid = maps[0][0, label]
        assert np.unravel_index(np.argmax(grid), grid.shape) == (row, column)  # rows are y, columns x
        heat = normalize(upsample(grid, SIZE))
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        assert row * CELL <= y < (row + 1) * CELL and column * CELL <= x < (column + 1) * CELL
        inside = heat[row * CELL:(row + 1) * CELL, column * CELL:(column + 1) * CELL].mean()
        assert inside > 3 * heat.mean()
        blended = overlay(image, heat)
        assert blended.shape == (SIZE, SIZE, 3) and blended.dtype == np.uint8
        # jet: the hottest pixel is tinted red, a far corner of the background blue
        far = (0, SIZE - 1) if (row, column) != (0, 3) else (SIZE - 1, SIZE - 1)
        assert int(blended[y, x, 0]) - int(blended[y, x, 2]) > int(blended[far][0]) - int(blended[far][2])


def test_a_head_without_attention_is_refused():
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = "plain", "small", None
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    with pytest.raises(NoAttentionError, match="pools without attention"):
        attention_maps(factory.build_classifier(config, 3), np.zeros((1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3), np.float32))


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    (folder / "beach.png").write_bytes(encode(random_image(rng), "PNG"))
    (folder / "street.jpg").write_bytes(encode(random_image(rng), "JPEG"))
    (folder / "broken.jpg").write_bytes(b"not an image")
    return str(folder)


@pytest.mark.slow
def test_the_command_writes_one_figure_per_image_and_skips_what_does_not_decode(image_workdir, photos, tmp_path):
    out = tmp_path / "attention"
    result = subprocess.run(
        [sys.executable, "-m", "cma_tf.visualize", "attention", f"--workdir={image_workdir}", f"--input={photos}",
         f"--out={out}", "--top_k=2"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = sorted(os.listdir(out))
    assert written == ["0000_beach.png", "0001_street.png"]
    assert "1 items did not decode and were skipped" in result.stderr and "broken.jpg" in result.stderr
    picture = Image.open(out / written[0])
    assert picture.size[0] > 300 and np.asarray(picture).std() > 10  # a drawn figure, not a blank


def test_runs_on_other_labels_are_refused_and_a_plain_run_named(image_workdir, photos, tmp_path):
    """A second workdir must score the same labels; a plain run has no maps (one line each)."""
    other = str(tmp_path / "plain_run")
    shutil.copytree(image_workdir, other)
    config = files.read_config(other)
    config.model.head = "plain"
    with open(os.path.join(other, files.CONFIG), "w") as f:
        json.dump(config.to_dict(), f)
    num_classes = len(load_workdir_model(image_workdir).vocabulary)
    factory.build_classifier(config, num_classes).save(os.path.join(other, files.FINAL_MODEL))
    with pytest.raises(NoAttentionError, match=r"plain_run: its head \(plain\) pools without attention"):
        write_attention_figures([image_workdir, other], [photos], str(tmp_path / "out"))


def test_cluster_order_puts_each_block_of_a_shuffled_graph_together():
    sizes = (4, 3, 5)
    blocks = np.repeat(np.arange(len(sizes)), sizes)
    permutation = np.random.default_rng(0).permutation(len(blocks))
    graph = (blocks[:, None] == blocks[None, :]).astype(float) * 0.8 + 0.05
    np.fill_diagonal(graph, 1.0)
    shuffled = graph[np.ix_(permutation, permutation)]
    ordered = blocks[permutation][cluster_order(shuffled)]
    assert sorted(ordered.tolist()) == sorted(blocks.tolist())
    assert sum(ordered[i] != ordered[i + 1] for i in range(len(ordered) - 1)) == len(sizes) - 1  # contiguous blocks


def test_cosine_and_projection_against_sklearn():
    from sklearn.decomposition import PCA
    from sklearn.metrics.pairwise import cosine_similarity as sklearn_cosine

    embeddings = np.random.default_rng(1).normal(size=(9, 6))
    np.testing.assert_allclose(cosine_similarity(embeddings), sklearn_cosine(embeddings), atol=1e-12)
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    expected = PCA(n_components=2).fit_transform(unit)
    points = project_2d(embeddings)
    for axis in range(2):  # principal axes are defined up to sign
        sign = np.sign(points[:, axis] @ expected[:, axis])
        np.testing.assert_allclose(sign * points[:, axis], expected[:, axis], atol=1e-9)


@pytest.mark.slow
def test_the_embeddings_command_writes_its_three_figures(image_workdir, tmp_path):
    out = tmp_path / "embeddings"
    result = subprocess.run(
        [sys.executable, "-m", "cma_tf.visualize", "embeddings", f"--workdir={image_workdir}", f"--out={out}"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["asge_loss.png", "embeddings_2d.png", "embeddings_similarity.png"]
    for name in os.listdir(out):
        assert np.asarray(Image.open(out / name)).std() > 10
    assert "Pearson r" in result.stdout


def test_video_maps_are_per_position_over_time(tmp_path):
    """A frame-level CMA-SNet model: one map per label over SNet's positions, drawn over the frames."""
    from cma_tf.config_base import get_paper_video_config
    from cma_tf.visualization.figures import attention_over_time

    config = get_paper_video_config("cma_snet")
    config.data.frames, config.model.snet_filters, config.asge.units = 64, (8, 8, 8, 8), 8
    model = factory.build_classifier(config, 5, factory.build_label_encoder(config, 5))
    frames = np.random.default_rng(0).normal(size=(2, 64, 1024)).astype(np.float32)
    probabilities, maps = attention_maps(model, frames)
    assert probabilities.shape == (2, 5) and [m.shape for m in maps] == [(2, 5, 4)]  # 64 frames / 16
    # Eq. 8: a distribution over positions, or all zero where ReLU(cos) is 0 everywhere (untrained)
    sums = maps[0].sum(-1)
    assert np.all(np.isclose(sums, 1.0, rtol=1e-5) | (sums == 0)) and np.any(sums > 0)
    path = str(tmp_path / "video.png")
    attention_over_time(64, [("cma_snet", probabilities[0], maps[0][0])], [(0, "label 0"), (3, "label 3")], path)
    assert np.asarray(Image.open(path)).std() > 10


def test_a_video_map_of_one_position_is_said_not_drawn(tmp_path, monkeypatch):
    """SNet reduces 16 frames to one position: the attention is 1.0 everywhere, a flat line that
    looks like a finding. The panel says why there is nothing over time instead."""
    from cma_tf.visualization import figures

    drawn = []
    monkeypatch.setattr(figures, "_save", lambda figure, path: drawn.append(figure))
    probabilities = np.array([0.9, 0.2, 0.7])
    one_position = np.ones((3, 1), np.float32)
    four_positions = np.array([[0.1, 0.2, 0.3, 0.4]] * 3, np.float32)
    figures.attention_over_time(16, [("cma_snet", probabilities, one_position), ("cma_fc", probabilities, four_positions)],
                                [(0, "a"), (2, "c")], str(tmp_path / "x.png"))
    single, several = drawn[0].axes[:2]
    assert len(several.patches) == 2  # one step line per label where there is something over time
    assert not single.patches and not single.lines, "a flat line drawn for one position"
    said = " ".join(text.get_text() for text in single.texts)
    assert "one position" in said and "16 frames" in said, said
