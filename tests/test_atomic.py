"""`cma_tf.atomic`: a reader never sees a half file, a failure leaves the old file (or none) and
no temporary file, and concurrent writers of one target each leave a complete file."""

import os
import random
import stat
import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from cma_tf.atomic import atomic_directory, atomic_path, atomic_write, temp_pattern, write_bytes, write_text

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Midway(Exception):
    pass


def _write_then_fail_with_file(path, error):
    with atomic_write(path) as f:
        f.write(b"new content, ")
        f.flush()
        raise error


def _write_then_fail_with_path(path, error):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new content, ")
        raise error


WRITERS = [_write_then_fail_with_file, _write_then_fail_with_path]


@pytest.mark.parametrize("error", [Midway("disk full"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
@pytest.mark.parametrize("fail", WRITERS, ids=["atomic_write", "atomic_path"])
def test_a_failure_midway_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, fail, error):
    path = tmp_path / "result.bin"
    old = os.urandom(100_000)
    path.write_bytes(old)
    with pytest.raises(type(error)):
        fail(str(path), error)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["result.bin"]


@pytest.mark.parametrize("fail", WRITERS, ids=["atomic_write", "atomic_path"])
def test_a_new_file_appears_only_on_success(tmp_path, fail):
    path = tmp_path / "new.txt"
    with pytest.raises(Midway):
        fail(str(path), Midway())
    assert os.listdir(tmp_path) == []
    write_text(str(path), "héllo\r\nwörld\n")
    assert path.read_bytes() == "héllo\r\nwörld\n".encode("utf-8")  # UTF-8, no newline translation
    assert os.listdir(tmp_path) == ["new.txt"]


def test_the_file_being_written_is_not_the_target_nor_matched_by_its_glob(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    write_bytes(path, b"old")
    with atomic_write(path) as f:
        f.write(b"new")
        f.flush()
        with open(path, "rb") as reader:
            assert reader.read() == b"old"
        assert tf.io.gfile.glob(str(tmp_path / "*.tfrecord")) == [path]
        assert tf.io.gfile.glob(str(tmp_path / "train*")) == [path]
        assert len(tf.io.gfile.glob(temp_pattern(path))) == 1
    with open(path, "rb") as reader:
        assert reader.read() == b"new"
    assert tf.io.gfile.glob(temp_pattern(path)) == []


def test_atomic_path_can_keep_the_suffix_a_writer_requires(tmp_path):
    import keras
    import numpy as np

    path = str(tmp_path / "model.keras")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with atomic_path(path, keep_suffix=True) as tmp:
        assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path) and tmp != path
        model.save(tmp)  # Keras refuses a path that does not end with `.keras`
        assert not os.path.exists(path)
    assert os.listdir(tmp_path) == ["model.keras"]
    x = np.ones((1, 3), np.float32)
    np.testing.assert_allclose(keras.models.load_model(path)(x), model(x))
    with atomic_path(path) as tmp:
        assert not tmp.endswith(".keras")
        write_bytes(tmp, b"x")


def test_temporary_names_are_unique_per_call(tmp_path):
    names = set()
    for _ in range(20):
        with atomic_path(str(tmp_path / "a.json")) as tmp:
            names.add(tmp)
            write_bytes(tmp, b"{}")
    assert len(names) == 20


SIZE = 2 * 1024 * 1024
ROUNDS = 25
_WRITER_SCRIPT = textwrap.dedent("""
    import random, sys
    from cma_tf.atomic import atomic_write
    path, seed, rounds, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    data = random.Random(seed).randbytes(size)
    print("ready", flush=True)
    sys.stdin.readline()
    for _ in range(rounds):
        with atomic_write(path) as f:
            for start in range(0, size, 65536):  # many small writes: the writers interleave
                f.write(data[start:start + 65536])
    print("done", flush=True)
""")


@pytest.mark.slow
def test_concurrent_writers_of_one_target_each_write_a_complete_file(tmp_path):
    path = tmp_path / "shared.bin"
    contents = {seed: random.Random(seed).randbytes(SIZE) for seed in (1, 2)}
    old = random.Random(3).randbytes(SIZE)
    path.write_bytes(old)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(path), str(seed), str(ROUNDS), str(SIZE)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for seed in contents
    ]
    try:
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:  # both start together
            writer.stdin.write("go\n")
            writer.stdin.flush()
        while any(writer.poll() is None for writer in writers):
            data = path.read_bytes()  # a reader meanwhile: always a whole file
            assert data == old or data in contents.values(), f"a reader saw a {len(data)}-byte mix"
        for writer in writers:
            _, errors = writer.communicate(timeout=300)
            assert writer.returncode == 0, errors
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    assert path.read_bytes() in contents.values()
    assert os.listdir(tmp_path) == ["shared.bin"]


def test_atomic_directory_replaces_a_folder_only_when_complete(tmp_path):
    target = str(tmp_path / "1")
    with atomic_directory(target) as folder:
        assert os.listdir(folder) == [] and not os.path.exists(target)
        os.makedirs(os.path.join(folder, "variables"))
        write_text(os.path.join(folder, "variables", "v.txt"), "one")
        os.chmod(folder, 0o700)  # as `mkdtemp` would: the result still gets the umask's modes
    umask = os.umask(0)
    os.umask(umask)
    for directory, _, names in os.walk(target):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o777 & ~umask
        for name in names:
            assert stat.S_IMODE(os.stat(os.path.join(directory, name)).st_mode) == 0o666 & ~umask

    with pytest.raises(Midway):
        with atomic_directory(target) as folder:
            write_text(os.path.join(folder, "half"), "x")
            raise Midway()
    assert os.listdir(tmp_path) == ["1"]
    assert sorted(os.listdir(target)) == ["variables"]

    with atomic_directory(target + "/") as folder:
        write_text(os.path.join(folder, "two.txt"), "two")
    assert os.listdir(tmp_path) == ["1"]
    assert os.listdir(target) == ["two.txt"]
