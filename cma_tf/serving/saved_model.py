"""Writing a `ServingModule` as a SavedModel that TF Serving loads (one numbered version folder)."""

import os
import tempfile

import tensorflow as tf

from cma_tf.atomic import atomic_directory, is_local
from cma_tf.serving.module import ServingModule
from cma_tf.serving.predictor import is_saved_model
from cma_tf.serving.workdir_model import describe_workdir, load_workdir_model
from cma_tf.training import workdir as files

VOCABULARY_ASSET = files.VOCABULARY
METADATA = "assets.extra/cma_tf.json"


def build_serving_module(model, vocabulary, request, top_k, scratch_dir, thresholds=None):
    """A `ServingModule` whose vocabulary asset is `scratch_dir/labels.txt` (written here)."""
    files.write_labels(scratch_dir, vocabulary)
    vocabulary_file = files.path(scratch_dir, files.VOCABULARY)
    return ServingModule(model, vocabulary_file, len(vocabulary), request, top_k, thresholds)


def check_export_dir(export_dir, overwrite=False):
    """A `FileExistsError` (one line, naming the version folders to give instead) unless
    `export_dir` can take a new SavedModel: it is new, or, with `overwrite`, an existing
    SavedModel version folder (or an empty folder). A model base folder (its numbered versions,
    notes, …) or any other folder is never replaced: `--overwrite` replaces one version."""
    if not tf.io.gfile.exists(export_dir):
        return
    if not tf.io.gfile.isdir(export_dir):
        raise FileExistsError(f"--export_dir {export_dir} is a file: give a new SavedModel version folder")
    entries = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(export_dir))
    if not entries or is_saved_model(export_dir):
        if overwrite:
            return
        raise FileExistsError(f"{export_dir} exists: choose a new version number or pass --overwrite")
    base = export_dir.rstrip("/")
    versions = sorted(int(name) for name in entries if name.isdigit())
    shown = ", ".join(entries[:5]) + (", …" if len(entries) > 5 else "")
    replace = f"--export_dir={base}/{versions[-1]} --overwrite to replace version {versions[-1]}, or " if versions else ""
    raise FileExistsError(
        f"{export_dir} is not a SavedModel version folder (it holds {shown}) and is never replaced as a whole: "
        f"give {replace}--export_dir={base}/{(versions[-1] if versions else 0) + 1} for a new version"
    )


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


def export_saved_model(model, vocabulary, request, export_dir, top_k=5, metadata=None, overwrite=False,
                       thresholds=None):
    """Saves `model` with the signatures of `module.py` to `export_dir`; returns the metadata
    written to `<export_dir>/assets.extra/cma_tf.json` (signatures, top-k, request format, the
    decision thresholds of `predicted`: `thresholds` `[N]`, else 0.5).

    A local export is written to a temporary sibling folder and renamed (`atomic_directory`:
    the umask's modes, so a model server running as another user can read it), so TF Serving,
    which watches the base folder for new version numbers, never sees half a version; with
    `overwrite`, the old version is replaced only once the new one is complete.
    """
    check_export_dir(export_dir, overwrite)
    with tempfile.TemporaryDirectory() as scratch:
        module = build_serving_module(model, vocabulary, request, top_k, scratch, thresholds)
        info = dict(metadata or {})
        info.update(
            signatures=describe_signatures(module),
            top_k=module.top_k,
            thresholds=[float(t) for t in module.thresholds.numpy()],
            num_classes=len(vocabulary),
            request=request.description,
            vocabulary_asset=f"assets/{VOCABULARY_ASSET}",
        )

        def write(folder):
            tf.saved_model.save(module, folder, signatures=module.signatures())
            files.write_json(os.path.join(folder, METADATA), info)

        if not is_local(export_dir):  # (a folder "rename" on gs:// is a copy of every object)
            if tf.io.gfile.exists(export_dir):
                tf.io.gfile.rmtree(export_dir)
            write(export_dir)
            return info
        os.makedirs(os.path.dirname(os.path.abspath(export_dir)), exist_ok=True)
        with atomic_directory(export_dir) as folder:
            write(folder)
    return info


def export_workdir(workdir, export_dir, checkpoint="final", top_k=5, vocabulary_file=None, overwrite=False):
    """Exports the run in `workdir`; returns the metadata dict written beside the SavedModel."""
    check_export_dir(export_dir, overwrite)  # before the model loads
    run = load_workdir_model(workdir, checkpoint, vocabulary_file)
    thresholds = files.read_thresholds(workdir, checkpoint, run.vocabulary)
    metadata = {"workdir": describe_workdir(workdir), "model": run.model_path, "config": run.config.to_dict(),
                "thresholds_from": files.thresholds_path(workdir, checkpoint) if thresholds is not None else "0.5"}
    return export_saved_model(run.model, run.vocabulary, run.request, export_dir, top_k, metadata, overwrite,
                              thresholds)
