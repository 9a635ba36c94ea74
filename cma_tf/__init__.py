"""cma_tf: Cross-Modality Attention with Semantic Graph Embedding (You et al., AAAI 2020).

`import cma_tf` registers every Keras class of the package (layers, heads, label encoders,
backbone preprocessing, the classifier and its loss) under the package name `cma_tf`, so

    import keras, cma_tf
    model = keras.saving.load_model("runs/demo/cma/final.keras")

needs nothing more. TensorFlow is imported first: its import-time log lines are dropped when
`TF_CPP_MIN_LOG_LEVEL` asks for quiet (`cli.import_tensorflow_quietly`), and a command
(`python -m cma_tf.<command>`) sets that level itself unless the user did
(`cli.quiet_tensorflow_logs`); imported as a library, TensorFlow logs as the user set it.
"""

import importlib
import pkgutil
import sys

# The packages whose modules define Keras classes (each registers its own with `saving.register`).
_KERAS_PACKAGES = ("layers", "backbones", "graph", "heads", "models")
_KERAS_MODULES = ("losses", "schedules", "optimizers")


def _run_as_a_command():
    return sys.orig_argv[1:2] == ["-m"] and len(sys.orig_argv) > 2 and sys.orig_argv[2].startswith(f"{__name__}.")


def _register_keras_classes():
    for name in _KERAS_PACKAGES:
        package = importlib.import_module(f"{__name__}.{name}")
        for module in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package.__name__}.{module.name}")
    for name in _KERAS_MODULES:
        importlib.import_module(f"{__name__}.{name}")


from cma_tf import cli as _cli  # noqa: E402  (standard library only)

if _run_as_a_command():
    _cli.quiet_tensorflow_logs()
_cli.import_tensorflow_quietly()

_register_keras_classes()
