"""Subprocess entry points for the distribution tests (devices must be configured before
TensorFlow starts, so each check runs in a fresh interpreter).

    python -m tests.training.distribute_worker replicas OUT.npz
    python -m tests.training.distribute_worker multi_worker DATA_DIR WORKDIR OUT.npz   (TF_CONFIG set)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def replicas(out_path):
    """One train step of the same model from the same weights on 1 device and on 2 replicas."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from cma_tf.backbones.small import small_backbone
    from cma_tf.graph.asge import ASGEEncoder
    from cma_tf.heads.cma import CMAHead
    from cma_tf.losses import WeightedBinaryCrossentropy
    from cma_tf.models.classifier import MultiLabelClassifier

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    labels = (rng.random((8, 5)) < 0.4).astype("float32")
    adjacency = np.eye(5, dtype="float32")
    adjacency[0, 1] = adjacency[1, 0] = 0.7

    def build(strategy, weights=None):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            encoder = ASGEEncoder(5, 8, name="label_encoder")
            encoder.build()
            model = MultiLabelClassifier(small_backbone(32, (8, 16, 32, 64)), CMAHead(5, encoder, 16), graph_loss_weight=0.5)
            model.set_label_graph(adjacency)
            # Per-replica BatchNorm statistics would differ from whole-batch ones by design;
            # inference-mode BN isolates what is tested: loss scaling and gradient reduction.
            for layer in model._flatten_layers():
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
            if weights is not None:
                model.set_weights(weights)
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=WeightedBinaryCrossentropy())
        return model

    one = build(tf.distribute.OneDeviceStrategy("/cpu:0"))
    initial = one.get_weights()
    two_strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    two = build(two_strategy, initial)
    assert two_strategy.num_replicas_in_sync == 2
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    one.fit(data, epochs=1, verbose=0, shuffle=False)
    two.fit(data, epochs=1, verbose=0, shuffle=False)
    arrays = {}
    for index, (w0, w1, w2) in enumerate(zip(initial, one.get_weights(), two.get_weights())):
        arrays[f"initial_{index}"], arrays[f"one_{index}"], arrays[f"two_{index}"] = w0, w1, w2
    np.savez(out_path, **arrays)


def multi_worker(data_dir, workdir, out_path):
    """A few epochs of the real trainer under MultiWorkerMirroredStrategy (TF_CONFIG)."""
    from cma_tf.training.strategy import make_strategy

    strategy = make_strategy("multi_worker")  # before any op: collectives are set up at start-up
    import keras

    from tests.test_cli import tiny_config

    from cma_tf.training.trainer import train_and_evaluate

    class SaveWeights(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            # Trainable weights: BatchNorm moving statistics are each worker's own (Keras BN is
            # not synchronized across replicas unless asked), so they are not compared.
            np.savez(out_path, *[np.asarray(w) for w in self.model.trainable_weights])

    config = tiny_config("cma", data_dir)
    config.train.epochs = 2
    config.train.steps_per_epoch = 3
    config.train.batch_size = 8
    train_and_evaluate(config, workdir, strategy=strategy, extra_callbacks=[SaveWeights()])


if __name__ == "__main__":
    {"replicas": replicas, "multi_worker": multi_worker}[sys.argv[1]](*sys.argv[2:])
