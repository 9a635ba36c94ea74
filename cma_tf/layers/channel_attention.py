"""Channel dual-branch cross-attention (CDCA), as reconstructed for the MMDSR head.

RECONSTRUCTED: the MMDSR paper (Kuang & Li, Machine Learning 113, 2024) is public only as its
abstract, which says the module "explore[s] the correlation between global information and
local features … by the way of adaptive cross-fusion". The two branches here are public
modules: the channel self-affinity of DANet's channel attention module (Fu et al., CVPR 2019,
Eq. 3-4) and squeeze-and-excitation (Hu et al., CVPR 2018); the fusion gate α is our choice.
None of it is taken from the MMDSR paper's text.
"""

import keras
from keras import ops

from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability


@register
class ChannelDualBranchAttention(keras.layers.Layer):
    """`Y = X + α·Y_loc + (1 − α)·Y_glb` on a map `X` `[B, ..., C]` (positions flattened to `M`).

        local  (DANet CAM):  A = softmax_row(XᵀX) `[C, C]`,  Y_loc = X Aᵀ
        global (SE):         w = σ(W_2 ReLU(W_1 GAP(X) + b_1) + b_2),  Y_glb = X ⊙ w
        fusion:              α = σ(w_αᵀ [GAP(Y_loc); GAP(Y_glb)] + b_α)   (one scalar per image)

    DANet's paper (Eq. 3) writes the softmax of the affinity `XᵀX`, which we follow; its
    released code takes the softmax of `max(XᵀX) − XᵀX` instead. We leave out DANet's
    learnable output scale: α weighs the branches. The affinity is computed in float32 (its
    entries are sums over all positions and overflow float16). `W_1` has
    `max(C // reduction, 1)` units.

    Args:
        reduction: int, SE reduction ratio. Default 16 (SE-Net's).

    Returns:
        `Y`, the shape of the input.
    """

    def __init__(self, reduction=16, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        channels = input_shape[-1]
        hidden = max(channels // self.reduction, 1)
        def weight(name, shape, initializer):
            return self.add_weight(name=name, shape=shape, initializer=initializer)

        self.squeeze_kernel = weight("squeeze_kernel", (channels, hidden), "glorot_uniform")
        self.squeeze_bias = weight("squeeze_bias", (hidden,), "zeros")
        self.excite_kernel = weight("excite_kernel", (hidden, channels), "glorot_uniform")
        self.excite_bias = weight("excite_bias", (channels,), "zeros")
        self.fusion_kernel = weight("fusion_kernel", (2 * channels, 1), "glorot_uniform")
        self.fusion_bias = weight("fusion_bias", (1,), "zeros")

    def branches(self, features):
        """`(Y_loc, Y_glb, α)`: `[B, M, C]`, `[B, M, C]`, `[B, 1, 1]`."""
        x = flatten_positions(features)
        x32 = ops.cast(x, "float32")
        affinity = ops.softmax(ops.einsum("bmc,bmd->bcd", x32, x32), axis=-1)
        local = ops.einsum("bcd,bmd->bmc", ops.cast(affinity, x.dtype), x)
        squeeze = ops.relu(ops.matmul(ops.mean(x, axis=1), self.squeeze_kernel) + self.squeeze_bias)
        excite = ops.sigmoid(ops.matmul(squeeze, self.excite_kernel) + self.excite_bias)
        glob = x * excite[:, None, :]
        pooled = ops.concatenate([ops.mean(local, axis=1), ops.mean(glob, axis=1)], axis=-1)
        alpha = ops.sigmoid(ops.matmul(pooled, self.fusion_kernel) + self.fusion_bias)
        return local, glob, alpha[:, :, None]

    def call(self, features):
        local, glob, alpha = self.branches(features)
        fused = flatten_positions(features) + alpha * local + (1.0 - alpha) * glob
        return ops.reshape(fused, ops.shape(features))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction})
        return config
