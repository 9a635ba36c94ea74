"""Our DBoF, NetVLAD and NeXtVLAD against the official code that defined them, with the same
weights on the same frames, in inference mode (BatchNorm's moving statistics, no dropout):

    DbofMoeModel   ↔ `DbofModel` with its `video_level_models.MoeModel` of github.com/google/youtube-8m,
                     the starter code (`YT8M_STARTER_DIR`, a copy of it: `frame_level_models.py`;
                     checked at commit e6f6bf682d20, 2019-10-25)
    NetVladModel   ↔ `NetVLADModelLF` of github.com/antoine77340/Youtube-8M-WILLOW
                     (`WILLOW_DIR`, a copy of it: `frame_level_models.py`, `video_level_models.py`)
    NextVladModel  ↔ `NeXtVLADModel` of github.com/linrongc/youtube-8m
                     (`NEXTVLAD_DIR`, a copy of it: `nextvlad.py`)

Each test skips when its variable is unset or names a folder without that file. Ours is the
starter-code class of `cma_tf/yt8m_starter/models.py`, which gives the Keras heads' logits to
1e-5 (test_video_pooling_parity.py), at the demo sizes of `configs/yt8m_demo.py`, with the rgb
(1024) and audio (128) streams that the official classes hard-code. Its variables get random
values (`randomize`, then `at_input_scale` or `at_input_statistics`) and are copied, renamed,
into the official graph, which runs unchanged in a process of its own (`official_code.py` lists
what it adapts). Made deterministic: the starter's DbofModel samples `--iterations` frames
(`SampleRandomFrames`, with replacement, or `SampleRandomSequence`) and WILLOW's
NetVLADModelLF samples them with replacement, both also in evaluation; their samplers are
replaced by the identity on the T frames given (T = `--iterations`), as ours takes each of T
frames once. NeXtVLAD has no sampling; it takes T = 300 frames (its hard-coded mask length),
all valid. Inputs: the starter's and WILLOW's train.py and eval.py L2-normalise each frame
before the model, and so does the child; ours does it inside the class (under the starter's
train.py a second time, which changes nothing). linrongc's train.py un-whitens the rgb
features before the model; that is outside both classes, and our head leaves it out by choice
(`cma_tf/heads/nextvlad.py`), so both get the same raw frames.

The official flags are set to our configuration, as the official commands set them, with K, H
(and G, r) reduced: the starter's DBoF defaults (`--dbof_add_batch_norm --sample_random_frames
--dbof_pooling_method=max --dbof_activation=sigmoid`, MoE of `--moe_num_mixtures=2`, its L2
1e-8 MoeModel's default), WILLOW's best single model (README: `--netvlad_relu=False --gating=True
--moe_prob_gating=True --moe_l2=1e-6`, MoE of 2 mixtures) and linrongc's
`scripts/train_nextvlad_local.sh` (`--expansion=2 --drop_rate=0.5
--video_level_classifier_model=LogisticModel --l2_penalty=1e-5`). Ours follows the NeXtVLAD code
after its ReLU behind the hidden BatchNorm was removed (linrongc commit 3260ed8, an ancestor of
the copy's HEAD); no flag selects it. Compared, like for like, is what each class returns:
the starter's and WILLOW's MoE their probability p (ours returns the log-odds
`log(p + ε) − log(q + ε)`, q = 1 − p, which give back `p = (1 + 2ε)·σ(logits) − ε`), linrongc's
LogisticModel its logits; and the classifier's slim L2 penalty, which both add to the training
loss.

Scale: a 10 % change of one weight must move the compared output past the tolerance. For
DBoF, `randomize`'s BatchNorm statistics left p nearly the same in every video (std over the
videos 1e-4) and a projection entry moving p by ≈ 4e-7; with `at_input_statistics`, one
random entry ×1.1 of each variable moves p by ≥ 13× the tolerance, but for the `[1152, 256]`
projection, whose entries are each ≈ 3 % of a pre-activation: median 3×, 78 % of them > 1×,
its 20 largest ≥ 4.5×, one cluster's column ≥ 66× (measured once, not by the test).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.yt8m_starter import models as starter_models
from tests.yt8m_starter.official_code import run_official
from tests.yt8m_starter.test_models import seeded_graph
from tests.yt8m_starter.test_video_pooling_parity import STARTER, demo_config, randomize, starter_kwargs

v1 = tf.compat.v1
B, N = 3, 7
CALIBRATION_VIDEOS = 64

DBOF_NAMES = {
    "head/pooling/input_norm/": "input_bn/",
    "head/pooling/projection": "cluster_weights",
    "head/pooling/cluster_norm/": "cluster_bn/",
    "head/hidden/kernel": "hidden1_weights",
    "head/hidden_norm/": "hidden1_bn/",
    "head/classifier/gates/kernel": "gates/weights",
    "head/classifier/experts/kernel": "experts/weights",
    "head/classifier/experts/bias": "experts/biases",
}
WILLOW_NAMES = {
    "head/input_norm/": "input_bn/",
    "head/netvlad_rgb/assignment": "video_VLAD/cluster_weights",
    "head/netvlad_rgb/centers": "video_VLAD/cluster_weights2",
    "head/netvlad_rgb/batch_norm/": "video_VLAD/cluster_bn/",
    "head/netvlad_audio/assignment": "audio_VLAD/cluster_weights",
    "head/netvlad_audio/centers": "audio_VLAD/cluster_weights2",
    "head/netvlad_audio/batch_norm/": "audio_VLAD/cluster_bn/",
    "head/hidden/kernel": "hidden1_weights",
    "head/hidden/bias": "hidden1_biases",
    "head/context_gating/kernel": "gating_weights_2",
    "head/context_gating/batch_norm/": "gating_bn/",
    "head/classifier/gates/kernel": "gates/weights",
    "head/classifier/experts/kernel": "experts/weights",
    "head/classifier/experts/bias": "experts/biases",
    "head/classifier/probability_gating/kernel": "gating_prob_weights",
    "head/classifier/probability_gating/batch_norm/": "gating_prob_bn/",
}
NEXTVLAD_NAMES = {
    "head/hidden/kernel": "hidden1_weights",
    "head/hidden_norm/": "hidden1_bn/",
    "head/se_gating/squeeze": "gating_weights_1",
    "head/se_gating/batch_norm/": "gating_bn/",
    "head/se_gating/excite": "gating_weights_2",
    "head/classifier/kernel": "fully_connected/weights",
    "head/classifier/bias": "fully_connected/biases",
}
for _stream, _scope in (("rgb", "video_VLAD/"), ("audio", "audio_VLAD/")):
    _ours = "head/nextvlad_%s/" % _stream
    NEXTVLAD_NAMES.update({
        _ours + "expand_kernel": _scope + "fully_connected/weights",
        _ours + "expand_bias": _scope + "fully_connected/biases",
        _ours + "attention_kernel": _scope + "fully_connected_1/weights",
        _ours + "attention_bias": _scope + "fully_connected_1/biases",
        _ours + "assignment": _scope + "cluster_weights",
        _ours + "assignment_norm/": _scope + "cluster_bn/",
        _ours + "centers": _scope + "cluster_weights2",
        _ours + "output_norm/": _scope + "vlad_bn/",
    })


def official_dir(variable, expected_file):
    directory = os.environ.get(variable)
    if not directory:
        pytest.skip(f"{variable} is not set (no copy of the official code)")
    if not os.path.isfile(os.path.join(directory, expected_file)):
        pytest.skip(f"{variable}={directory!r} has no {expected_file}")
    pytest.importorskip("tf_slim", reason="tf_slim is not installed (the official code imports "
                                          "tensorflow.contrib.slim; pip install tf_slim)")
    return directory


def official_weights(values, names):
    """Our variable values under their official names. BatchNorm scopes (keys ending in '/')
    keep their four leaves, which slim names as we do; the centres, `[D, K]` here, are
    `[1, D, K]` there."""
    weights = {}
    for name, value in values.items():
        ours = name.replace("tower/", "", 1)
        scope, leaf = ours.rsplit("/", 1)
        official = names[ours] if ours in names else names[scope + "/"] + leaf
        assert official not in weights, official  # one of ours for each official variable
        weights[official] = value[None] if official.endswith("cluster_weights2") else value
    return weights


def at_input_scale(values, batch_norms, kernels):
    """`randomize`'s values, but for the BatchNorms in `batch_norms` `{scope: s}`, whose input
    coordinates are of size s, not 1 (moving mean × s, moving variance × s²), and the kernels
    in `kernels`, whose input is unit-norm (N(0, 1), not N(0, 1/fan-in)); else the per-video
    signal there would drown in the constant terms, and the pooling hardly reach the output."""
    values = dict(values)  # new arrays: `randomize`'s stay as drawn
    for scope, scale in batch_norms.items():
        values["tower/" + scope + "/moving_mean"] = values["tower/" + scope + "/moving_mean"] * scale
        values["tower/" + scope + "/moving_variance"] = values["tower/" + scope + "/moving_variance"] * scale ** 2
    for name in kernels:
        values["tower/" + name] = values["tower/" + name] * np.sqrt(values["tower/" + name].shape[0])
    return values


def at_input_statistics(variant, config, values, frames):
    """`randomize`'s `values`, but each BatchNorm's moving statistics taken relative to those of
    its input on the calibration `frames`: mean `m + r·s`, variance `s²·v` (r, v `randomize`'s
    draws in (−0.3, 0.3) and (0.5, 2)), as a trained BatchNorm's are near its input's, where
    m and s² are the batch statistics there of our class in training mode with momentum 0 (one
    step sets each moving statistic to them, every layer normalised by its batch's). Needed by
    DBoF: its hidden layer's input is a max over T sigmoids, ≈ 0.9 in every video, so its
    pre-BN activations vary by ≈ 0.05 between videos around means of up to ±2.5, and fixed
    statistics in (−0.3, 0.3) and (0.5, 2) would leave the output nearly the same for all."""
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, frames.shape)
        kwargs = dict(starter_kwargs(config, variant, True), batchnorm_momentum=0.0)
        with v1.variable_scope("tower"):
            STARTER[variant](**kwargs).create_model(
                inputs, vocab_size=N, num_frames=tf.fill([frames.shape[0]], frames.shape[1]), is_training=True)
        variables = {v.op.name: v for v in v1.global_variables()}
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        with v1.Session(graph=graph) as session:
            for name, value in values.items():
                variables[name].load(value, session)
            session.run(updates, {inputs: frames})
            statistics = session.run({name: variable for name, variable in variables.items()
                                      if name.endswith(("/moving_mean", "/moving_variance"))})
    values = dict(values)
    for name in statistics:
        if name.endswith("/moving_mean"):
            scope = name[:-len("moving_mean")]
            mean, variance = statistics[name], statistics[scope + "moving_variance"]
            values[name] = (mean + values[name] * np.sqrt(variance)).astype(np.float32)
            values[scope + "moving_variance"] = (variance * values[scope + "moving_variance"]).astype(np.float32)
    return values


def our_outputs(variant, config, frames, batch_norms, kernels, calibration_frames=None):
    """Our starter class on `frames` in inference mode, its variables `at_input_scale`, then
    `at_input_statistics` on `calibration_frames` if given: (the values, logits, the
    classifier's slim L2 penalty)."""
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, frames.shape)
        with v1.variable_scope("tower"):
            result = STARTER[variant](**starter_kwargs(config, variant, False)).create_model(
                inputs, vocab_size=N, num_frames=tf.fill([frames.shape[0]], frames.shape[1]), is_training=False)
        variables = {v.op.name: v for v in v1.global_variables()}
        with v1.Session(graph=graph) as session:
            values = at_input_scale(randomize(session, graph, np.random.default_rng(2)), batch_norms, kernels)
            if calibration_frames is not None:
                values = at_input_statistics(variant, config, values, calibration_frames)
            for name, value in values.items():
                variables[name].load(value, session)
            logits, penalty = session.run([result["logits"], result["regularization_loss"]], {inputs: frames})
    return values, logits, penalty


def ours_and_official(variant, frames_per_video, kind, directory, names, flag_args, tmp_path,
                      batch_norms=None, kernels=(), calibrate=False):
    """Ours and the official class `kind` on the same random frames `[B, T, 1152]`, with the
    same weights (`calibrate`: BatchNorm statistics `at_input_statistics` of other random
    frames, `CALIBRATION_VIDEOS` of them): (our logits, our L2 penalty, the official outputs)."""
    config = demo_config(variant, False)
    config.data.frames = frames_per_video
    frames = np.random.default_rng(1).normal(size=(B, frames_per_video, 1024 + 128)).astype(np.float32)
    calibration_frames = None
    if calibrate:
        calibration_frames = np.random.default_rng(3).normal(
            size=(CALIBRATION_VIDEOS, frames_per_video, 1024 + 128)).astype(np.float32)
    values, logits, penalty = our_outputs(variant, config, frames, batch_norms or {}, kernels, calibration_frames)
    official = run_official(kind, directory, frames, official_weights(values, names), flag_args, N, str(tmp_path))
    assert np.std(logits) > 0.05 and np.abs(logits).max() < 8  # varied, not saturated
    return logits, penalty, official


def test_dbof_gives_the_probabilities_of_the_starter_codes_dbof(tmp_path):
    """DbofModel with its default flags (BatchNorm, max pooling, sigmoid, MoE of 2 mixtures),
    K, H and T our demo's, its frame sampling the identity; its MoE returns p, which ours
    gives back from its log-odds. p within 1e-6 + 1e-5·p, the L2 penalty (slim L2 1e-8 on the
    gate and expert weights) 1e-5. The BatchNorm statistics `at_input_statistics`."""
    directory = official_dir("YT8M_STARTER_DIR", "frame_level_models.py")
    config = demo_config("dbof", False)
    flag_args = [
        f"--iterations={config.data.frames}", f"--dbof_cluster_size={config.model.clusters}",
        f"--dbof_hidden_size={config.model.hidden_units}", "--dbof_add_batch_norm=True",
        "--sample_random_frames=True", "--dbof_pooling_method=max", "--dbof_activation=sigmoid",
        "--video_level_classifier_model=MoeModel", f"--moe_num_mixtures={starter_models.MOE_MIXTURES}",
    ]
    logits, penalty, official = ours_and_official(
        "dbof", config.data.frames, "starter", directory, DBOF_NAMES, flag_args, tmp_path, calibrate=True)
    epsilon = starter_models.PROBABILITY_EPSILON
    probabilities = (1 + 2 * epsilon) / (1 + np.exp(-logits.astype(np.float64))) - epsilon
    assert np.mean(np.std(probabilities, axis=0)) > 0.01  # the videos differ, not only the classes
    np.testing.assert_allclose(probabilities, official["predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(penalty, official["regularization"], rtol=1e-5)


def test_netvlad_gives_the_probabilities_of_willows_gated_netvlad(tmp_path):
    """NetVLADModelLF with its best single model's flags, K and H our demo's; its MoE returns
    p, which ours gives back from its log-odds. p within 1e-6 + 1e-5·p, the L2 penalty 1e-5."""
    directory = official_dir("WILLOW_DIR", "frame_level_models.py")
    config = demo_config("netvlad", False)
    flag_args = [
        f"--iterations={config.data.frames}", f"--netvlad_cluster_size={config.model.clusters}",
        f"--netvlad_hidden_size={config.model.hidden_units}", "--netvlad_relu=False", "--gating=True",
        "--moe_prob_gating=True", f"--moe_l2={starter_models.NETVLAD_CLASSIFIER_L2}",
        f"--moe_num_mixtures={starter_models.MOE_MIXTURES}", "--netvlad_add_batch_norm=True",
        "--video_level_classifier_model=MoeModel",
    ]
    logits, penalty, official = ours_and_official(
        "netvlad", config.data.frames, "willow", directory, WILLOW_NAMES, flag_args, tmp_path,
        batch_norms={"head/input_norm": 1 / np.sqrt(1024 + 128)}, kernels=("head/hidden/kernel",))
    epsilon = starter_models.PROBABILITY_EPSILON
    probabilities = (1 + 2 * epsilon) / (1 + np.exp(-logits.astype(np.float64))) - epsilon
    np.testing.assert_allclose(probabilities, official["predictions"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(penalty, official["regularization"], rtol=1e-5)


def test_nextvlad_gives_the_logits_of_linrongcs_nextvlad(tmp_path):
    """NeXtVLADModel with the flags of train_nextvlad_local.sh, K, G, H and r our demo's, on
    300 frames (its hard-coded length); its LogisticModel returns logits. Logits within
    1e-5 + 1e-5·|logit|, the L2 penalty (slim L2 on W and b) 1e-5."""
    directory = official_dir("NEXTVLAD_DIR", "nextvlad.py")
    config = demo_config("nextvlad", False)
    flag_args = [
        f"--nextvlad_cluster_size={config.model.clusters}", f"--nextvlad_hidden_size={config.model.hidden_units}",
        f"--groups={config.model.nextvlad_groups}", f"--expansion={config.model.nextvlad_expansion}",
        f"--gating_reduction={config.model.gating_reduction}", f"--drop_rate={config.model.nextvlad_dropout}",
        "--video_level_classifier_model=LogisticModel", f"--l2_penalty={starter_models.NEXTVLAD_CLASSIFIER_L2}",
    ]
    group_width = {name: config.model.nextvlad_expansion * size // groups
                   for name, size, groups in (("rgb", 1024, config.model.nextvlad_groups),
                                              ("audio", 128, config.model.nextvlad_groups // 2))}
    logits, penalty, official = ours_and_official(
        "nextvlad", 300, "nextvlad", directory, NEXTVLAD_NAMES, flag_args, tmp_path,
        batch_norms={f"head/nextvlad_{name}/output_norm": 1 / np.sqrt(width) for name, width in group_width.items()})
    np.testing.assert_allclose(logits, official["logits"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(penalty, official["regularization"], rtol=1e-5)
