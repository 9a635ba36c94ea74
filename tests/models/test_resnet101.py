"""Real ResNet-101 (keras.applications, weights=None): the MS-CMA taps at 448 and one train
step of MS-CMA at a small input. Marked slow; `make test-slow` runs them (CI does)."""

import keras
import numpy as np
import pytest

from cma_tf.backbones.resnet import resnet101_backbone
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.ms_cma import MultiScaleCMAHead
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier

pytestmark = pytest.mark.slow


def test_taps_and_scales_at_448_match_the_paper():
    backbone = resnet101_backbone(image_size=448, weights=None)
    assert [tuple(t.shape) for t in backbone.outputs] == [(None, 28, 28, 1024), (None, 14, 14, 2048)]
    head = MultiScaleCMAHead(80, ASGEEncoder(80, 256))
    assert [tuple(s) for s in head._scale_shapes([(None, 28, 28, 1024), (None, 14, 14, 2048)])] == [
        (None, 28, 28, 1024), (None, 14, 14, 2048), (None, 7, 7, 512)
    ]
    # 42.6M: ResNet-101 without its top (keras.applications).
    assert backbone.count_params() == pytest.approx(42_658_176, rel=1e-3)


def test_one_ms_cma_train_step_on_real_resnet101():
    num_classes, size = 6, 128
    encoder = ASGEEncoder(num_classes, 256, name="label_encoder")
    encoder.build()
    encoder.trainable = False
    model = MultiLabelClassifier(resnet101_backbone(image_size=size, weights=None), MultiScaleCMAHead(num_classes, encoder))
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=1e-5), loss=WeightedBinaryCrossentropy())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, size, size, 3)).astype("float32")
    labels = np.array([[1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0]], "float32")
    kernel = model.head.branches[0].classifier.kernel
    before = np.copy(kernel)
    logs = model.train_step((images, labels))
    assert np.isfinite(float(logs["loss"]))
    assert not np.allclose(before, np.asarray(kernel))
    assert model.predict(images, verbose=0).shape == (2, num_classes)
