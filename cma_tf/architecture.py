"""Constants of the architecture that the Keras models and the YouTube-8M starter-code classes
(`cma_tf/yt8m_starter/models.py`, TF1 graph ops) both follow, defined once so the two cannot
drift apart; `tests/yt8m_starter/test_keras_parity.py` checks that, with the same weights, they
give the same logits.
"""

BN_MOMENTUM = 0.99  # every BatchNorm (Keras' default)
BN_EPSILON = 1e-3
ATTENTION_EPSILON = 1e-6  # Eq. 7-8: the cosine's norm clamp and the clamp of Σ_i z_k^i
SNET_LAYERS = 4  # the paper's "4 successive 1D convolution and pooling layers"
SNET_KERNEL = 3  # our choice: the paper gives no widths (docs/design.md §2.9)
SNET_POOL = 2
FC_LAYERS = 2  # Table 4's FC backbone: frame-wise Dense → BN → ReLU, twice
CMT_LAYERS = 2  # Eq. 6's "several" 1×1 conv → BN → ReLU stages
