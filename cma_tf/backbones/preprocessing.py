"""Input normalisation owned by the backbone, so models take RGB pixels in [0, 255]."""

import keras
from keras import ops

from cma_tf.saving import register

# keras.applications.resnet.preprocess_input ("caffe" mode): RGB → BGR, minus ImageNet means.
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@register
class CaffeImageNormalization(keras.layers.Layer):
    """RGB [0, 255] → BGR minus the ImageNet channel means, as the ImageNet ResNet weights expect."""

    def call(self, images):
        bgr = ops.flip(ops.cast(images, self.compute_dtype), axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
