"""The examples of the README and the guides that say they work pasted as is (`tests/doc_examples.py`).

Fast: every command of every tested block parses, with its flags, as its command line would
(a renamed flag or config field fails here). Slow: each file's blocks run in order, in a folder
of their own, at small sizes (`doc_examples.SMALL_SIZES`), and every command must exit 0.
"""

import json
import os
import subprocess
import sys

import pytest

from tests import doc_examples

ROOT = doc_examples.ROOT
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
CHECK = ("import json, sys; from tests import doc_examples; "
         "print(json.dumps(doc_examples.check_flags(json.load(sys.stdin))))")
DOCUMENTS_WITH_EXAMPLES = [name for name in doc_examples.documents() if doc_examples.tested_blocks(name)]


def flag_problems(commands):
    result = subprocess.run([sys.executable, "-c", CHECK], input=json.dumps(commands), cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_readme_and_the_guides_have_tested_examples():
    assert "README.md" in DOCUMENTS_WITH_EXAMPLES and len(DOCUMENTS_WITH_EXAMPLES) >= 5, DOCUMENTS_WITH_EXAMPLES
    for name in DOCUMENTS_WITH_EXAMPLES:
        assert doc_examples.commands_of(name), f"{name}: a tested block without a command"


def test_every_documented_flag_is_a_flag_of_its_command():
    commands = [command for name in DOCUMENTS_WITH_EXAMPLES for command in doc_examples.commands_of(name)]
    assert flag_problems(commands) == []


def test_a_renamed_flag_or_config_field_is_caught():
    """The check itself: the quick start's commands with one flag and one config field misspelt
    (as a rename would leave them) are both reported, and the correct ones are not."""
    good = doc_examples.commands_of("README.md")
    where, csv_list = next((w, a) for w, a in good if "cma_tf.data.convert.csv_list" in a)
    where_train, train = next((w, a) for w, a in good if "cma_tf.train" in a)
    renamed_flag = [a.replace("--csv=", "--csv_file=") for a in csv_list]
    renamed_field = [a.replace("--config.data.data_dir=", "--config.data.dir=") for a in train]
    problems = flag_problems([[where, csv_list], [where, renamed_flag], [where_train, train], [where_train, renamed_field]])
    assert len(problems) == 2, problems
    assert "csv_file" in problems[0] and "data.dir" in problems[1], problems


def test_a_block_with_another_command_is_refused(tmp_path):
    with pytest.raises(ValueError, match="runs only"):
        doc_examples.block_commands("guide.md", 10, ["python -m cma_tf.train --workdir=x", "rm -rf runs"])


@pytest.mark.slow
@pytest.mark.parametrize("name", DOCUMENTS_WITH_EXAMPLES)
def test_the_examples_run_at_small_sizes(name, tmp_path):
    os.symlink(os.path.join(ROOT, "configs"), tmp_path / "configs")
    for where, argv in doc_examples.commands_of(name):
        command = [sys.executable, *doc_examples.with_small_sizes(argv)[1:]]
        result = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=1800)
        assert result.returncode == 0, f"{where}: {' '.join(argv)}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
