"""What every Keras class of the package needs to come back from a `.keras` file.

`register` files a class under the package name `cma_tf` (`keras.saving.load_model` finds it as
`cma_tf>ClassName` once its module is imported; `import cma_tf` imports them all), and
`sync_sublayer_trainability` makes a frozen layer come back frozen.
"""

import keras

PACKAGE = "cma_tf"


def register(cls):
    """`keras.saving.register_keras_serializable(package="cma_tf")` as a plain decorator."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


def sync_sublayer_trainability(layer):
    """Re-applies `layer.trainable` to the sublayers `__init__` created.

    Keras sets `trainable` (e.g. `False` from a saved config) before a subclassed layer's
    `__init__` creates its sublayers, which then stay trainable; call this at the end of
    `__init__` so a frozen layer comes back frozen from `.keras` files. Only freezing is
    propagated: a trainable head must not unfreeze a frozen label encoder it was given.
    """
    if not layer.trainable:
        # Assigning the value a layer already has did not reach its sublayers (seen with
        # Keras 3.15), hence the toggle.
        layer.trainable = True
        layer.trainable = False
