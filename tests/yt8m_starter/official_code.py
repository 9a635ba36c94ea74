"""Runs a model class of an official YouTube-8M code base, unchanged, on given frames and
weights, in a Python process of its own: `run_official` from the tests, `main` in the child.

    starter   DbofModel       `frame_level_models.py` of github.com/google/youtube-8m (the starter code)
    willow    NetVLADModelLF  `frame_level_models.py` of github.com/antoine77340/Youtube-8M-WILLOW
    nextvlad  NeXtVLADModel   `nextvlad.py` of github.com/linrongc/youtube-8m

The child installs the TF1 shims of `cma_tf.yt8m_starter.run` (`sys.modules["tensorflow"]` =
`tf.compat.v1`, eager execution off, `tensorflow.contrib.slim` = tf_slim, and `ops.Tensor` =
`tf.Tensor` in `tensorflow.python.framework.ops`, which TF 2.21 no longer has and tf_slim 1.1's
`layers.utils.constant_value`, reached by every `slim.batch_norm`, tests for), then imports the
official module with the official directory first on `sys.path`: its `import models, utils,
model_utils, video_level_models, frame_level_models` must find the official files, not those
of another official repository (the starter's and WILLOW's both have `frame_level_models.py`),
and the shims must not reach the pytest process. It builds the class at the root variable scope in inference mode
(`is_training=False`) with the official absl flags given, loads each official variable from
the weights given (every variable exactly once, same shapes), and writes `predictions`, the
`logits` when the class returns them, and the sum of `tf.losses.get_regularization_losses()`.

Adaptations, none editing an official file:
    all: `slim.batch_norm(..., fused=False)` (linrongc's) builds a `tf.layers` BatchNormalization,
        which needs the Keras 2 package tf_keras, absent next to Keras 3; the child drops
        `fused=False`, so every slim BatchNorm runs the fused kernel: the same variables
        (beta, gamma, moving_mean, moving_variance) and, in inference, the same
        `(x − moving_mean)/√(moving_variance + 1e-3)·gamma + beta`. linrongc's
        `slim.nn.relu` is `tf.nn.relu`, which contrib.slim exposed and tf_slim does not.
    starter: `DbofModel` samples `--iterations` frames (`model_utils.SampleRandomFrames` with
        replacement, or `SampleRandomSequence`, by `--sample_random_frames`) in evaluation too;
        both are replaced by the identity, which refuses a sample count other than the frames
        given, so both models see the same T frames. The starter's train.py and eval.py
        L2-normalise each frame (all features together) before the model; the child does the same.
    willow: `NetVLADModelLF` samples `--iterations` frames with replacement
        (`model_utils.SampleRandomFrames`) in evaluation too; it is replaced by the identity,
        which refuses a sample count other than the frames given, so both models see the same
        T frames. WILLOW's train.py and eval.py L2-normalise each frame before the model
        (`tf.nn.l2_normalize(model_input_raw, 2)`); the child does the same. WILLOW is Python 2
        code: `cluster_size/2` (the audio stream's clusters) would be a float shape under
        Python 3, so `--netvlad_cluster_size` reaches `create_model` as `cluster_size`, an int
        whose `/` floors as Python 2's did.
    nextvlad: nothing; the frames must be exactly 300 (`tf.sequence_mask(num_frames, 300)`
        is hard-coded) and `num_frames` is 300 for every video, so the mask is all ones.
"""

import importlib
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {"starter": ("frame_level_models", "DbofModel"), "willow": ("frame_level_models", "NetVLADModelLF"),
          "nextvlad": ("nextvlad", "NeXtVLADModel")}
L2_NORMALISED = ("starter", "willow")  # kinds whose train.py and eval.py L2-normalise each frame
WEIGHT_PREFIX = "weights/"


class Python2Int(int):
    """An int whose true division floors and stays a Python2Int, as `/` of ints in Python 2."""

    def __truediv__(self, other):
        return Python2Int(int(self) // other)


def all_frames(model_input, num_frames, num_samples):
    """`SampleRandomFrames` (and `SampleRandomSequence`) when the sample is every frame once, in order."""
    if model_input.shape[1] != num_samples:
        raise ValueError("the frames given (%s) are not --iterations=%d" % (model_input.shape[1], num_samples))
    return model_input


def without_fused_false(batch_norm):
    def fused_batch_norm(*args, fused=None, **kwargs):
        return batch_norm(*args, **kwargs)

    return fused_batch_norm


def run_official(kind, directory, frames, weights, flag_args, vocab_size, work_dir):
    """The official class `kind` on `frames [B, T, 1152]` with `weights {official variable name:
    value}` and `flag_args` (`["--name=value", …]`): `{"predictions", ["logits",]
    "regularization"}`."""
    inputs, outputs = os.path.join(work_dir, kind + "_in.npz"), os.path.join(work_dir, kind + "_out.npz")
    np.savez(inputs, frames=frames, **{WEIGHT_PREFIX + name: value for name, value in weights.items()})
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    command = [sys.executable, "-m", "tests.yt8m_starter.official_code", kind, directory, str(vocab_size),
               inputs, outputs, *flag_args]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with np.load(outputs) as result:
        return dict(result)


def main(argv):
    kind, directory, vocab_size, inputs_path, outputs_path, *flag_args = argv
    from absl import flags

    from cma_tf.yt8m_starter.run import install_tf1_shims

    tf = install_tf1_shims()
    slim = tf.contrib.slim
    slim.batch_norm = without_fused_false(slim.batch_norm)
    if not hasattr(slim, "nn"):
        slim.nn = tf.nn
    sys.path.insert(0, os.path.abspath(directory))
    module_name, class_name = MODELS[kind]
    module = importlib.import_module(module_name)
    flags.FLAGS(["official"] + flag_args)
    params = {}
    if kind == "starter":
        module.utils.SampleRandomFrames = module.utils.SampleRandomSequence = all_frames
    if kind == "willow":
        module.utils.SampleRandomFrames = all_frames
        params["cluster_size"] = Python2Int(flags.FLAGS.netvlad_cluster_size)
    with np.load(inputs_path) as data:
        frames = data["frames"]
        weights = {key[len(WEIGHT_PREFIX):]: data[key] for key in data.files if key.startswith(WEIGHT_PREFIX)}

    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(0)
        inputs = tf.placeholder(tf.float32, frames.shape)
        model_input = tf.nn.l2_normalize(inputs, 2) if kind in L2_NORMALISED else inputs
        num_frames = tf.fill([frames.shape[0]], frames.shape[1])
        result = getattr(module, class_name)().create_model(
            model_input, vocab_size=int(vocab_size), num_frames=num_frames, is_training=False, **params)
        variables = {v.op.name: v for v in tf.global_variables()}
        regularization = tf.add_n(tf.losses.get_regularization_losses())
        fetches = {"predictions": result["predictions"], "regularization": regularization}
        if "logits" in result:
            fetches["logits"] = result["logits"]
        if sorted(variables) != sorted(weights):
            raise ValueError("official variables %s, weights given for %s" % (sorted(variables), sorted(weights)))
        with tf.Session(graph=graph) as session:
            for name, variable in variables.items():
                if tuple(variable.shape.as_list()) != weights[name].shape:
                    raise ValueError("%s: official shape %s, given %s" % (name, variable.shape, weights[name].shape))
                variable.load(weights[name], session)
            np.savez(outputs_path, **session.run(fetches, {inputs: frames}))


if __name__ == "__main__":
    main(sys.argv[1:])
