"""Writing a `ServingModule` as a SavedModel that TF Serving loads (one numbered version folder)."""

import os
import shutil
import tempfile

import tensorflow as tf

from cma_tf.errors import DataError
from cma_tf.serving.module import ServingModule
from cma_tf.training import workdir as files

VOCABULARY_ASSET = "labels.txt"
METADATA = "assets.extra/cma_tf.json"


def build_serving_module(model, vocabulary, request, top_k, scratch_dir):
    """A `ServingModule` whose vocabulary asset is `scratch_dir/labels.txt` (written here)."""
    vocabulary_file = os.path.join(scratch_dir, VOCABULARY_ASSET)
    with open(vocabulary_file, "w") as f:
        f.write("".join(f"{name}\n" for name in vocabulary))
    return ServingModule(model, vocabulary_file, len(vocabulary), request, top_k)


def describe_signatures(module):
    """`{signature: {"inputs": {name: "dtype shape"}, "outputs": {...}}}` of a module's signatures."""

    def spec(tensor_spec):
        dims = ",".join("-1" if d is None else str(d) for d in tensor_spec.shape)
        return f"{tensor_spec.dtype.name} [{dims}]"

    described = {}
    for name, function in module.signatures().items():
        inputs = {s.name: spec(s) for s in tf.nest.flatten(function.structured_input_signature)}
        outputs = {key: spec(s) for key, s in sorted(function.structured_outputs.items())}
        described[name] = {"inputs": inputs, "outputs": outputs}
    return described


def workdir_vocabulary(workdir, config, vocabulary_file=None):
    """The label names of a run: `vocabulary_file`, else `<workdir>/labels.txt`, else the dataset's."""
    from cma_tf import factory

    if vocabulary_file:
        if not tf.io.gfile.exists(vocabulary_file):
            raise FileNotFoundError(f"--vocabulary: {vocabulary_file} does not exist")
        return files.read_labels(vocabulary_file)
    if tf.io.gfile.exists(files.path(workdir, files.VOCABULARY)):
        return files.read_labels(files.path(workdir, files.VOCABULARY))
    return factory.read_vocabulary(config)


def is_local(path):
    return "://" not in path


def export_saved_model(model, vocabulary, request, export_dir, top_k=5, metadata=None, overwrite=False):
    """Saves `model` with the signatures of `module.py` to `export_dir`; returns the metadata
    written to `<export_dir>/assets.extra/cma_tf.json` (signatures, top-k, request format).

    A local export is written to a temporary sibling folder and renamed, so TF Serving,
    which watches the base folder for new version numbers, never sees half a version.
    """
    if tf.io.gfile.exists(export_dir):
        if not overwrite:
            raise FileExistsError(f"{export_dir} exists: choose a new version number or pass --overwrite")
        tf.io.gfile.rmtree(export_dir)
    with tempfile.TemporaryDirectory() as scratch:
        module = build_serving_module(model, vocabulary, request, top_k, scratch)
        info = dict(metadata or {})
        info.update(
            signatures=describe_signatures(module),
            top_k=module.top_k,
            num_classes=len(vocabulary),
            request=request.description,
            vocabulary_asset=f"assets/{VOCABULARY_ASSET}",
        )
        target = export_dir
        if is_local(export_dir):
            parent = os.path.dirname(os.path.abspath(export_dir))
            os.makedirs(parent, exist_ok=True)
            target = tempfile.mkdtemp(prefix=f".{os.path.basename(export_dir)}.tmp-", dir=parent)
        try:
            tf.saved_model.save(module, target, signatures=module.signatures())
            files.write_json(os.path.join(target, METADATA), info)
            if target != export_dir:
                os.rename(target, export_dir)
        finally:
            if target != export_dir and os.path.exists(target):
                shutil.rmtree(target, ignore_errors=True)
    return info


def export_workdir(workdir, export_dir, checkpoint="final", top_k=5, vocabulary_file=None, overwrite=False):
    """Exports the run in `workdir`; returns the metadata dict written beside the SavedModel."""
    import keras

    from cma_tf import factory

    config = files.read_config(workdir)
    vocabulary = workdir_vocabulary(workdir, config, vocabulary_file)
    model_path = files.trained_model_path(workdir, checkpoint)
    model = keras.saving.load_model(model_path)
    if model.output_shape[-1] != len(vocabulary):
        raise DataError(
            f"{model_path} scores {model.output_shape[-1]} classes but the vocabulary has {len(vocabulary)} names"
        )
    metadata = {"workdir": os.path.abspath(workdir), "model": model_path, "config": config.to_dict()}
    return export_saved_model(
        model, vocabulary, factory.serving_request(config), export_dir, top_k, metadata, overwrite
    )
