"""The multi-label image classifier: a backbone and a head, with a custom `train_step`."""

import keras
import tensorflow as tf

from cma_tf.backbones.video import frames_from_codes, is_frame_codes
from cma_tf.graph.asge import LabelGraphLoss, dense_graph_loss_with_guard
from cma_tf.layers.label_prior import LabelPriorOffset
from cma_tf.saving import register


def scale_for_replicas(value):
    """Divides a per-replica loss term by the replica count, as Keras does for compiled losses.

    Gradients are summed across replicas; a term that every replica computes in full (the
    graph loss) must be divided by the replica count or it is applied N times (docs/design.md §2.11).
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return value / tf.cast(replicas, value.dtype) if replicas > 1 else value


@register
class MultiLabelClassifier(keras.Model):
    """images `[B, S, S, 3]` (RGB, 0..255) → per-class logits `[B, N]`; `σ(logits)` = `y*`.

    Video models take float frames `[B, T, D]` or, as the frame-level readers hand them, the
    8-bit codes `{"frame_codes": uint8 [B, T, D], "num_frames": int [B]}`, which the model
    dequantizes as its first step (`backbones.video.FrameDequantization`) inside the same
    compiled step, on the accelerator; both give the same logits.

    Training minimises the compiled loss (Eq. 12). When `graph_loss_weight > 0` and the head
    owns a trainable label encoder (CMA, MS-CMA), Φ is fine-tuned jointly and the train step
    adds `graph_loss_weight · L_ge(E)` (Eq. 4) with the graph held by `graph_loss`
    (set it with `set_label_graph`). The step reports `classification_loss` and
    `graph_loss` separately, besides the total `loss`.

    Args:
        backbone: a functional `keras.Model`, images → list of feature maps (shallow to deep);
            or, to train a head on maps computed once (`selection/feature_cache.py`), a model
            with one input per map that returns them (`selection.feature_head.maps_backbone`).
        head: a head layer (`cma_tf.heads`), feature maps → logits.
        graph_loss_weight: float, λ of the joint ASGE loss; 0 keeps E as the head's encoder
            makes it (frozen after ASGE in the paper's recipe). Default 0.
        graph_alpha: float, α of Eq. 5 for the joint loss. Default 0.
        graph_row_guard: float, weight of `asge.row_guard_loss` beside the joint loss (it keeps
            labels of Φ from dying while E is fine-tuned, docs/design.md §2.21); the `loss` is
            `classification + λ (L_ge + graph_row_guard · guard)`. Default 0.
        scale_loss_weight: float, weight of the mean per-scale loss for multi-scale heads
            (heads with `scale_outputs`, i.e. MS-CMA): each scale's own logits are also
            trained against the labels (deep supervision; see `MultiScaleCMAHead`). Ignored
            for single-scale heads. Default 1.
        label_prior: bool, add the training labels' prior log-odds to the logits
            (`layers.label_prior.LabelPriorOffset`, a fixed offset; set it with
            `set_label_prior`): the model starts at the prior instead of at ½ for every label
            (docs/design.md §2.31). Default False (the paper).

    Examples:
    >>> from cma_tf.backbones.small import small_backbone
    >>> from cma_tf.heads.plain import PlainHead
    >>> model = MultiLabelClassifier(small_backbone(32, (8, 16, 32, 64)), PlainHead(4))
    >>> model.predict(keras.ops.zeros((2, 32, 32, 3)), verbose=0).shape
    (2, 4)
    """

    def __init__(self, backbone, head, graph_loss_weight=0.0, graph_alpha=0.0, scale_loss_weight=1.0,
                 graph_row_guard=0.0, label_prior=False, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.head = head
        joint = graph_loss_weight > 0
        if joint and not hasattr(head, "label_encoder"):
            raise ValueError(f"graph_loss_weight > 0 needs a head with a label encoder, got {type(head).__name__}")
        if joint and not hasattr(head.label_encoder, "all_last_preactivations"):
            raise ValueError(f"graph_loss_weight > 0 fine-tunes an ASGEEncoder, got {type(head.label_encoder).__name__}")
        self.graph_loss = LabelGraphLoss(head.num_classes, graph_alpha, name="graph_loss") if joint else None

        # === Functional Model ===
        shape = backbone.input_shape
        if isinstance(shape, list):  # a backbone over cached feature maps (cma_tf/selection/)
            images = [keras.Input(one[1:], name=f"map{i}") for i, one in enumerate(shape)]
        else:
            images = keras.Input(shape[1:], name="images")
        # float32 logits under mixed precision, so the loss and the scores are float32.
        self.label_prior = LabelPriorOffset(head.num_classes, name="label_prior") if label_prior else None
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(head(backbone(images)))
        logits = self._with_prior(logits)
        super().__init__(inputs=images, outputs=logits, **kwargs)

        # === Config ===
        self.graph_loss_weight = graph_loss_weight
        self.graph_alpha = graph_alpha
        self.graph_row_guard = float(graph_row_guard)
        self.scale_loss_weight = scale_loss_weight
        self.supervises_scales = bool(scale_loss_weight) and hasattr(head, "scale_outputs")
        if self.graph_loss is not None:
            self.graph_loss.build()
        self.classification_loss_tracker = keras.metrics.Mean(name="classification_loss")
        self.graph_loss_tracker = keras.metrics.Mean(name="graph_loss") if joint else None
        self.scale_loss_tracker = keras.metrics.Mean(name="scale_loss") if self.supervises_scales else None

    def __call__(self, inputs, *args, **kwargs):
        return super().__call__(self.frames(inputs), *args, **kwargs)

    @staticmethod
    def frames(inputs):
        """The backbone's float input: 8-bit frame codes dequantized, anything else as it is."""
        return frames_from_codes(inputs) if is_frame_codes(inputs) else inputs

    def _with_prior(self, logits):
        return logits if self.label_prior is None else self.label_prior(logits)

    def set_label_prior(self, label_counts, num_examples):
        """Sets the logits' offset to the prior of `label_counts` `[N]` in `num_examples`."""
        if self.label_prior is None:
            raise ValueError("this model was built with label_prior=False and has no offset to set")
        self.label_prior.set_prior(label_counts, num_examples)

    def set_label_graph(self, adjacency):
        """Sets `A` (conditional probabilities) for the joint graph loss."""
        if self.graph_loss is None:
            raise ValueError("this model has graph_loss_weight == 0 and keeps no label graph")
        self.graph_loss.set_adjacency(adjacency)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            if self.supervises_scales:
                # The same computation as self(x), keeping the per-scale logits.
                scale_logits = [
                    scale for scale, _ in self.head.scale_outputs(self.backbone(self.frames(x), training=True), training=True)
                ]
                logits = self._with_prior(keras.ops.cast(self.head.fusion(scale_logits), "float32"))
                scale_logits = [self._with_prior(keras.ops.cast(scale, "float32")) for scale in scale_logits]
            else:
                logits = self(x, training=True)
            classification_loss = self.compute_loss(
                x=x, y=y, y_pred=logits, sample_weight=sample_weight, training=True
            )
            loss = classification_loss
            if self.supervises_scales:
                scale_loss = tf.add_n([
                    self.compute_loss(x=x, y=y, y_pred=scale, sample_weight=sample_weight, training=True)
                    for scale in scale_logits
                ]) / len(scale_logits)
                loss = loss + self.scale_loss_weight * scale_loss
            if self.graph_loss is not None:
                graph_loss, joint_loss = dense_graph_loss_with_guard(
                    self.graph_loss, self.head.label_encoder.all_last_preactivations(training=True), self.graph_row_guard
                )
                loss = loss + scale_for_replicas(self.graph_loss_weight * joint_loss)
            scaled_loss = self.optimizer.scale_loss(loss)
        weights = self.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(scaled_loss, weights), weights))

        batch = tf.shape(logits)[0]
        replicas = tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)
        self._loss_tracker.update_state(loss * replicas, sample_weight=batch)
        self.classification_loss_tracker.update_state(classification_loss * replicas, sample_weight=batch)
        if self.graph_loss is not None:
            self.graph_loss_tracker.update_state(graph_loss)
        if self.supervises_scales:
            self.scale_loss_tracker.update_state(scale_loss * replicas, sample_weight=batch)
        metrics = self.compute_metrics(x, y, logits, sample_weight=sample_weight)
        return metrics

    def get_config(self):
        return {
            "backbone": keras.layers.serialize(self.backbone),
            "head": keras.layers.serialize(self.head),
            "graph_loss_weight": self.graph_loss_weight,
            "graph_alpha": self.graph_alpha,
            "graph_row_guard": self.graph_row_guard,
            "scale_loss_weight": self.scale_loss_weight,
            "label_prior": self.label_prior is not None,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.layers.deserialize(config["backbone"])
        config["head"] = keras.layers.deserialize(config["head"])
        return cls(**config)
