"""`config.data.vocabulary` names the records' labels; it does not map them by name. The records
store class ids in the order of their data directory's own vocabulary, so a file listing the
same labels in another order would train a model whose names are shuffled against its outputs:
`train` refuses it (one line naming the first id that differs, both names) before it writes
anything, with the rule and message `evaluate`, `predict` and `export` use."""

import os

from cma_tf.data import vocab
from tests.test_cli import DEMO_CONFIG, run_cli, tiny_config, tiny_data  # noqa: F401 (fixture)
from tests.training.test_workdir_config import TINY_FLAGS


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_train_refuses_the_data_labels_in_another_order_before_writing(tiny_data, tmp_path):
    with open(os.path.join(tiny_data, "labels.txt")) as f:
        names = f.read().splitlines()
    reordered = names[1:] + names[:1]  # every id now names another label
    vocabulary = tmp_path / "reordered.txt"
    vocabulary.write_text("".join(name + "\n" for name in reordered))
    workdir = tmp_path / "run"
    result = run_cli(
        "cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={tiny_data}", *TINY_FLAGS,
        "--config.train.steps_per_epoch=2", f"--config.data.vocabulary={vocabulary}", f"--workdir={workdir}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = error_lines(result)
    assert "Traceback" not in result.stderr
    assert f"config.data.vocabulary {vocabulary}" in line, line
    assert f"at id 0 (line 1): {reordered[0]!r} instead of {names[0]!r}" in line, line
    assert not workdir.exists()


def test_a_copy_of_the_data_labels_is_accepted_and_a_longer_list_is_not(tiny_data, tmp_path):
    import pytest

    from cma_tf.errors import DataError
    from cma_tf.training.trainer import check_vocabulary_setting

    with open(os.path.join(tiny_data, "labels.txt")) as f:
        names = f.read().splitlines()
    copy = tmp_path / "copy.txt"
    copy.write_text("".join(name + "\n" for name in names))
    config = tiny_config("plain", tiny_data)
    config.data.vocabulary = str(copy)
    check_vocabulary_setting(config)
    longer = tmp_path / "longer.txt"
    longer.write_text("".join(name + "\n" for name in names + ["zebra"]))
    config.data.vocabulary = str(longer)
    with pytest.raises(DataError, match=rf"at id {len(names)} \(line {len(names) + 1}\): 'zebra' instead of the end"):
        check_vocabulary_setting(config)


def test_the_shared_check_names_the_first_difference():
    import pytest

    from cma_tf.errors import DataError

    vocab.check_same_vocabulary(["a", "b"], ["a", "b"], "X", "Y", "fix it")
    with pytest.raises(DataError, match=r"^X differs from Y at id 1 \(line 2\): 'c' instead of 'b'; fix it$"):
        vocab.check_same_vocabulary(["a", "c", "b"], ["a", "b", "c"], "X", "Y", "fix it")
    with pytest.raises(DataError, match=r"at id 2 \(line 3\): the end of the list \(2 labels\) instead of 'c'"):
        vocab.check_same_vocabulary(["a", "b"], ["a", "b", "c"], "X", "Y", "fix it")
