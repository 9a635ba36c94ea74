"""`predict --vocabulary` and `export --vocabulary` on a workdir: a file holding the run's labels
in another order (or other labels) is refused, naming the first id that differs and both names,
before any output is written; on a calibrated run the refusal names the order, not the
thresholds."""

import os
import shutil

import pytest

from cma_tf.errors import DataError


def run_labels(workdir):
    with open(os.path.join(workdir, "labels.txt")) as f:
        return f.read().splitlines()


def reordered_file(workdir, tmp_path):
    names = run_labels(workdir)
    reordered = names[::-1]
    assert reordered[0] != names[0]
    path = tmp_path / "reordered.txt"
    path.write_text("".join(name + "\n" for name in reordered))
    return str(path), reordered, names


def test_predict_refuses_the_runs_labels_in_another_order(image_data, image_workdir, tmp_path):
    from cma_tf.serving.batch_predict import predict

    vocabulary, reordered, names = reordered_file(image_workdir, tmp_path)
    output = tmp_path / "out.csv"
    expected = f"--vocabulary {vocabulary} differs from the run's {os.path.join(image_workdir, 'labels.txt')} at id 0 (line 1): {reordered[0]!r} instead of {names[0]!r}"
    with pytest.raises(DataError) as error:
        predict(image_workdir, [image_data], str(output), progress=False, vocabulary_file=vocabulary)
    assert str(error.value).startswith(expected), str(error.value)
    assert not output.exists()


def test_export_refuses_the_runs_labels_in_another_order(image_workdir, tmp_path):
    from cma_tf.serving.saved_model import export_workdir

    vocabulary, reordered, names = reordered_file(image_workdir, tmp_path)
    with pytest.raises(DataError, match=rf"at id 0 \(line 1\): {reordered[0]!r} instead of {names[0]!r}"):
        export_workdir(image_workdir, str(tmp_path / "m" / "1"), vocabulary_file=vocabulary)
    assert not (tmp_path / "m").exists()


def test_on_a_calibrated_run_the_refusal_names_the_order(image_workdir, tmp_path):
    from cma_tf.evaluate import evaluate_workdirs
    from cma_tf.serving.saved_model import export_workdir

    workdir = str(tmp_path / "run")
    shutil.copytree(image_workdir, workdir)
    evaluate_workdirs([workdir], ["run"], calibrate_split="train")
    vocabulary, reordered, names = reordered_file(workdir, tmp_path)
    with pytest.raises(DataError) as error:
        export_workdir(workdir, str(tmp_path / "m" / "1"), vocabulary_file=vocabulary)
    assert "thresholds" not in str(error.value) and f"at id 0 (line 1): {reordered[0]!r}" in str(error.value)


def test_the_runs_own_labels_are_accepted(image_workdir, tmp_path):
    from cma_tf.serving.workdir_model import load_workdir_model

    copy = tmp_path / "copy.txt"
    shutil.copy(os.path.join(image_workdir, "labels.txt"), copy)
    assert load_workdir_model(image_workdir, vocabulary_file=str(copy)).vocabulary == run_labels(image_workdir)
