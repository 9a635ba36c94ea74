"""The served model: a trained classifier behind the signatures TF Serving calls.

Signatures (`SIGNATURES` of a `ServingModule`; names of inputs by request format, see
`cma_tf/data/requests.py`):

    serving_default     <bytes input> tf.string [B]       one encoded image / serialized record each
    predict_pixels      pixels  float32 [B, S, S, 3]      image models: RGB 0..255, already S × S
    predict_frames      frames  float32 [B, T, D]         video models: dequantized features
    predict_frame_codes frame_codes uint8 [B, T, D]       frame-level models: the published 8-bit
                        num_frames  int32 [B]             codes, dequantized in the model (rows
                                                          from num_frames on count as zeros)

Every signature returns

    scores          float32 [B, N]  σ(logits), `y*` of the paper, one column per label
    top_k_classes   int32   [B, K]  label ids, best first
    top_k_labels    string  [B, K]  their names, from the vocabulary asset (`assets/labels.txt`)
    top_k_scores    float32 [B, K]  their scores
    predicted       bool    [B, N]  the decisions: scores ≥ each label's threshold (the run's
                                    calibrated ones, `cma_tf.evaluate --calibrate`; else 0.5)
    predicted_labels string [B]     the names of the predicted labels, joined by ";"

and `serving_default` also returns `valid` bool [B]: False for an item that does not decode
(not an image, a truncated file, a malformed record) or whose scores are not finite (a record
with NaN or infinite features). Such an item gets scores 0, classes −1,
labels "" and no predicted label, and does not affect the others. A request must hold at least one item: an empty
batch fails with INVALID_ARGUMENT "empty batch" (TF Serving's REST API refuses an empty
`instances` list itself, before the model: "No values in 'instances' array"); a wrong dtype or shape is refused by the
signature itself (INVALID_ARGUMENT naming the expected type), and float inputs of another shape
than the model's fail with INVALID_ARGUMENT "pixels must be [batch, S, S, 3]" (or frames).
"""

import tensorflow as tf

from cma_tf.data.requests import RequestFormat, decode_each
from cma_tf.data.yt8m.frames import FRAME_CODES, NUM_FRAMES
from cma_tf.metrics.thresholds import DEFAULT_THRESHOLD

DEFAULT_SIGNATURE = "serving_default"
OUTPUT_KEYS = ("scores", "top_k_classes", "top_k_labels", "top_k_scores", "predicted", "predicted_labels")
PREDICTED_SEPARATOR = ";"
VALID_KEY = "valid"
EMPTY_BATCH_MESSAGE = "empty batch: the request must hold at least one item"


class ServingModule(tf.Module):
    """A Keras classifier (inputs → logits), its label vocabulary and its request format.

    Args:
        model: the trained `MultiLabelClassifier` (or any Keras model of the same input and
            logits output).
        vocabulary_file: the label names, one a line, line = class id; becomes the SavedModel
            asset `assets/<its base name>`.
        num_classes: N, checked against the model's output.
        request: the `RequestFormat` of the model's data.
        top_k: K, the labels returned per item (at most N).
        thresholds: `[N]` per-label decision thresholds, or None for 0.5 everywhere.
    """

    def __init__(self, model, vocabulary_file, num_classes, request: RequestFormat, top_k=5, thresholds=None):
        super().__init__(name="cma_tf_serving")
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        if model.output_shape[-1] != num_classes:
            raise ValueError(f"the model scores {model.output_shape[-1]} classes but the vocabulary has {num_classes}")
        # The model is held in a closure and the TensorFlow variables its traced functions read
        # are tracked as a list, as `keras.export` does: tracking the Keras model object writes
        # every variable twice, and a session loader (TF Serving's) restores only the copy that
        # the functions do not read.
        self._logits = lambda inputs: model(inputs, training=False)
        self.num_classes = num_classes
        self.request = request
        self.top_k = min(int(top_k), num_classes)
        thresholds = [DEFAULT_THRESHOLD] * num_classes if thresholds is None else [float(t) for t in thresholds]
        if len(thresholds) != num_classes:
            raise ValueError(f"{len(thresholds)} thresholds for {num_classes} classes")
        self.thresholds = tf.constant(thresholds, tf.float32)
        self.vocabulary_asset = tf.saved_model.Asset(vocabulary_file)
        self.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.vocabulary_asset, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )
        self.serve_bytes = tf.function(
            self._serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name=request.bytes_input)]
        )
        self.serve_tensor = tf.function(
            self._serve_tensor,
            input_signature=[tf.TensorSpec([None, *request.item_shape], tf.float32, name=request.tensor_input)],
        )
        if request.codes_signature:
            self.serve_codes = tf.function(self._serve_codes, input_signature=[
                tf.TensorSpec([None, *request.item_shape], tf.uint8, name=FRAME_CODES),
                tf.TensorSpec([None], tf.int32, name=NUM_FRAMES),
            ])
        read = {}
        for function in self.signatures().values():
            read.update((id(variable), variable) for variable in function.variables)
        self.model_variables = list(read.values())

    def signatures(self):
        """`{name: concrete function}` for `tf.saved_model.save(..., signatures=...)`."""
        signatures = {
            DEFAULT_SIGNATURE: self.serve_bytes.get_concrete_function(),
            self.request.tensor_signature: self.serve_tensor.get_concrete_function(),
        }
        if self.request.codes_signature:
            signatures[self.request.codes_signature] = self.serve_codes.get_concrete_function()
        return signatures

    def _scores(self, inputs):
        return tf.sigmoid(tf.cast(self._logits(inputs), tf.float32))

    def _top_k(self, scores, valid=None):
        top = tf.math.top_k(scores, k=self.top_k)
        predicted = scores >= self.thresholds
        if valid is not None:
            predicted = predicted & valid[:, tf.newaxis]
        names = self.labels.lookup(tf.range(self.num_classes, dtype=tf.int64))
        joined = tf.strings.reduce_join(tf.where(predicted, names + PREDICTED_SEPARATOR, ""), axis=1)
        return {
            "scores": scores,
            "top_k_classes": top.indices,
            "top_k_labels": self.labels.lookup(tf.cast(top.indices, tf.int64)),
            "top_k_scores": top.values,
            "predicted": predicted,
            "predicted_labels": tf.strings.regex_replace(joined, PREDICTED_SEPARATOR + "$", ""),
        }

    def _check_not_empty(self, inputs):
        return tf.debugging.assert_positive(tf.shape(inputs)[0], message=EMPTY_BATCH_MESSAGE)

    def _serve_tensor(self, inputs):
        # A loaded signature does not enforce its static shape, and the convolutions would take
        # any image size: un-resized pixels must fail, not be scored at another resolution.
        expected = self.request.item_shape
        shape_check = tf.debugging.assert_equal(
            tf.shape(inputs)[1:], tf.constant(expected, tf.int32),
            message=f"{self.request.tensor_input} must be [batch, {', '.join(map(str, expected))}]",
        )
        with tf.control_dependencies([self._check_not_empty(inputs), shape_check]):
            return self._top_k(self._scores(inputs))

    def _serve_codes(self, codes, num_frames):
        expected = self.request.item_shape
        checks = [
            self._check_not_empty(codes),
            tf.debugging.assert_equal(
                tf.shape(codes)[1:], tf.constant(expected, tf.int32),
                message=f"{FRAME_CODES} must be [batch, {', '.join(map(str, expected))}]",
            ),
            tf.debugging.assert_equal(
                tf.shape(num_frames), tf.shape(codes)[:1], message=f"{NUM_FRAMES} must be [batch], one count per video",
            ),
            tf.debugging.assert_non_negative(num_frames, message=f"{NUM_FRAMES} must be ≥ 0"),
        ]
        with tf.control_dependencies(checks):
            return self._top_k(self._scores({FRAME_CODES: codes, NUM_FRAMES: num_frames}))

    def _serve_bytes(self, items):
        with tf.control_dependencies([self._check_not_empty(items)]):
            count = tf.shape(items, out_type=tf.int64)[0]
        indices, rows = decode_each(items, self.request)
        num_classes = self.num_classes
        # A batch of zero rows never reaches the model (some layers cannot take one).
        decoded_scores = tf.cond(
            tf.size(indices) > 0, lambda: self._scores(rows), lambda: tf.zeros([0, num_classes], tf.float32)
        )
        at = indices[:, tf.newaxis]
        scores = tf.scatter_nd(at, decoded_scores, tf.stack([count, num_classes]))
        # Non-finite scores (NaN or infinite input features) are no answer either.
        valid = tf.scatter_nd(at, tf.ones_like(indices, tf.bool), [count]) & tf.reduce_all(tf.math.is_finite(scores), 1)
        outputs = self._top_k(tf.where(valid[:, tf.newaxis], scores, 0.0), valid)
        invalid = ~valid[:, tf.newaxis]
        outputs["top_k_classes"] = tf.where(invalid, -1, outputs["top_k_classes"])
        outputs["top_k_labels"] = tf.where(invalid, "", outputs["top_k_labels"])
        outputs[VALID_KEY] = valid
        return outputs
