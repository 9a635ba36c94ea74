"""The pretraining corpus (`cma_tf/datasets/pretrain_corpus.py`, docs/design.md §2.26): no class of it
is a benchmark's, by name and by pixels; it is deterministic from its seed."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cma_tf.datasets import coco_label_sets, coco_stats, demo
from cma_tf.datasets import pretrain_corpus as corpus

MASK_SIZE = 64
SQUARE = (2, 2, 60)  # x0, y0, side of the shapes compared
# A re-drawn benchmark shape overlaps the original far above this (the control below: > 0.9).
MAX_IOU = 0.8


def benchmark_shapes():
    """Every shape the benchmark's datasets draw, read from their own tables."""
    return {appearance.shape for appearance in demo.DEMO_APPEARANCE.values()} | set(coco_stats.SHAPES)


def benchmark_mask(shape):
    mask = Image.new("L", (MASK_SIZE, MASK_SIZE), 0)
    demo.draw_shape(ImageDraw.Draw(mask), shape, *SQUARE, 255)
    return np.asarray(mask) > 0


def corpus_mask(shape, angle=0.0, stretch=(1.0, 1.0)):
    x0, y0, side = SQUARE
    return corpus.shape_mask(shape, MASK_SIZE, (x0 + side / 2, y0 + side / 2), side, angle, stretch)


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_no_class_is_a_benchmark_shape_or_label():
    shapes = benchmark_shapes()
    assert shapes == set(corpus.BENCHMARK_SHAPES)  # the module's list is complete
    assert not shapes & set(corpus.SHAPES)
    assert {name.split("/")[0] for name in corpus.CLASSES} == set(corpus.SHAPES)
    labels = set(demo.DEMO_LABELS) | set(coco_label_sets.load_label_statistics().labels)
    assert not labels & set(corpus.CLASSES) and not labels & set(corpus.SHAPES)
    assert len(set(corpus.CLASSES)) == corpus.NUM_CLASSES == len(corpus.SHAPES) * len(corpus.FILLS) == 96


@pytest.mark.parametrize("shape", sorted(corpus.SHAPES))
def test_no_shape_draws_like_a_benchmark_shape(shape):
    """At every pose the corpus draws (rotation ±20°, stretch 0.8), the silhouette overlaps each
    benchmark shape drawn by the demo's own `draw_shape` in the same square by less than MAX_IOU."""
    for angle in (-corpus.MAX_ROTATION_DEGREES, 0.0, corpus.MAX_ROTATION_DEGREES):
        for stretch in ((1.0, 1.0), (1 / corpus.MAX_STRETCH, 1.0), (1.0, 1 / corpus.MAX_STRETCH)):
            mask = corpus_mask(shape, angle, stretch)
            for other in benchmark_shapes():
                assert iou(mask, benchmark_mask(other)) < MAX_IOU, (shape, other, angle, stretch)


def test_the_overlap_check_catches_a_redrawn_benchmark_shape(monkeypatch):
    """The control: a disk and a square drawn by the corpus's own rasteriser are caught."""
    monkeypatch.setitem(corpus.SHAPE_PRIMITIVES, "disk_again", [("polygon", corpus._circle(0.0, 0.0, 0.5), 255)])
    monkeypatch.setitem(corpus.SHAPE_PRIMITIVES, "square_again",
                        [("polygon", [(-0.4, -0.4), (0.4, -0.4), (0.4, 0.4), (-0.4, 0.4)], 255)])
    assert iou(corpus_mask("disk_again"), benchmark_mask("disk")) > 0.9
    assert iou(corpus_mask("square_again"), benchmark_mask("square")) > 0.9


def test_the_corpus_is_deterministic_from_its_seed():
    images, labels = corpus.render_split(corpus.TRAIN_SPLIT, 6, seed=3, image_size=48)
    again, labels_again = corpus.render_split(corpus.TRAIN_SPLIT, 6, seed=3, image_size=48)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, labels_again)
    # image i does not depend on how many are rendered
    np.testing.assert_array_equal(corpus.render_split(corpus.TRAIN_SPLIT, 3, seed=3, image_size=48)[0], images[:3])
    other_seed = corpus.render_split(corpus.TRAIN_SPLIT, 6, seed=4, image_size=48)[0]
    heldout = corpus.render_split(corpus.HELDOUT_SPLIT, 6, seed=3, image_size=48)[0]
    for different in (other_seed, heldout):
        assert all(np.abs(a.astype(int) - b).mean() > 10 for a, b in zip(images, different))
    assert images.dtype == np.uint8 and images.shape == (6, 48, 48, 3)


def test_every_class_has_the_same_number_of_images():
    _, labels = corpus.render_split(corpus.TRAIN_SPLIT, 2 * corpus.NUM_CLASSES, seed=0, image_size=32)
    np.testing.assert_array_equal(np.bincount(labels, minlength=corpus.NUM_CLASSES), 2)


def test_the_object_is_drawn_in_its_class_colour_family_and_varies():
    """Colour varies continuously: hues of one class's draws spread over the circle, half of
    them near the class's own hue (std 0.06), as the docstring says."""
    import colorsys

    rng = np.random.default_rng(0)
    hues = np.asarray([colorsys.rgb_to_hsv(*(corpus.sample_colour(rng, 7) / 255.0))[0] for _ in range(2000)])
    distance = np.abs((hues - corpus.class_hue(7) + 0.5) % 1.0 - 0.5)
    near = (distance < 0.12).mean()  # 2 std: 95 % of the class-hue half, 24 % of the uniform half
    assert 0.5 * 0.95 + 0.5 * 0.24 - 0.05 < near < 0.5 * 0.95 + 0.5 * 0.24 + 0.05
    assert len(np.unique(np.floor(hues * 12))) == 12
