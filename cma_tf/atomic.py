"""Atomic file writing: the one way the package writes its data, model and result files.

A file is written under a temporary name beside its target, `<dir>/.<name>.tmp-<pid>-<random>`
(unique per process and call; hidden, and not ending in the target's extension unless asked,
so no reader's glob takes it), then renamed onto the target (`tf.io.gfile`, so local paths and
`gs://…` alike). This guarantees that:

- a reader never sees a half-written file: the target is the old complete file until the
  rename, then the new complete one (local files are fsynced before the rename, so a power
  loss cannot leave the target renamed but empty);
- a failure while writing (an exception, Ctrl-C) leaves the old file untouched, or no file if
  there was none, and removes the temporary file;
- concurrent writers of one target (the workers of a multi-worker run) each write their own
  temporary file, so each produces a complete file and the last rename wins.

A process killed outright (SIGKILL, power loss) can leave its temporary file behind; it never
takes the target's name, and `temp_pattern` matches it for clean-ups.

    with atomic_write(path, "w") as f:          # a file object (`tf.io.gfile.GFile`)
        f.write(text)
    with atomic_path(path, keep_suffix=True) as tmp:   # a path, for writers that want one
        model.save(tmp)
    write_bytes(path, data); write_text(path, text); write_json(path, data)
    with atomic_directory(folder) as tmp:        # a whole folder (a SavedModel version)
        tf.saved_model.save(module, tmp)

On `gs://` a rename is a copy then a delete, and a folder is renamed object by object: a
reader still never sees a half-written file, but `atomic_directory` is not atomic there.
"""

import contextlib
import json
import os
import uuid

import tensorflow as tf

_TEMP_INFIX = ".tmp-"


def is_local(path: str) -> bool:
    """True for a path of the local file system (no `scheme://`)."""
    return "://" not in path


def temp_path(path: str, keep_suffix: bool = False) -> str:
    """A fresh temporary name beside `path`; `keep_suffix` ends it with `path`'s extension (for
    writers that require one, e.g. Keras' `model.save` wants `.keras`)."""
    directory, name = os.path.split(path)
    suffix = os.path.splitext(name)[1] if keep_suffix else ""
    return os.path.join(directory, f".{name}{_TEMP_INFIX}{os.getpid()}-{uuid.uuid4().hex}{suffix}")


def temp_pattern(path: str) -> str:
    """A glob pattern matching the temporary files of `path` (which may itself be a pattern)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}{_TEMP_INFIX}*")


def _fsync_file(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: str) -> None:
    """Removes a temporary file or folder if it exists; never raises (the caller is already
    raising the error that matters)."""
    try:
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        elif tf.io.gfile.exists(path):
            tf.io.gfile.remove(path)
    except (tf.errors.OpError, OSError):
        pass


@contextlib.contextmanager
def atomic_path(path: str, keep_suffix: bool = False):
    """Yields a temporary path to write `path`'s content to; on a normal exit the file there
    replaces `path`, on any exception it is removed and the exception propagates. See
    `temp_path` for `keep_suffix`."""
    tmp = temp_path(path, keep_suffix)
    try:
        yield tmp
        if is_local(tmp):
            _fsync_file(tmp)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except BaseException:
        _remove_quietly(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str, mode: str = "wb"):
    """Yields a file object (`tf.io.gfile.GFile`, `mode` "wb" or "w") whose content replaces
    `path` when the block ends normally; see `atomic_path`."""
    with atomic_path(path) as tmp, tf.io.gfile.GFile(tmp, mode) as f:
        yield f


def write_bytes(path: str, data: bytes) -> None:
    with atomic_write(path, "wb") as f:
        f.write(data)


def write_json(path: str, data) -> None:
    """Writes `data` as indented, key-sorted JSON (numpy floats as floats), making its folder
    if needed."""
    tf.io.gfile.makedirs(os.path.dirname(path) or ".")
    write_text(path, json.dumps(data, indent=2, sort_keys=True, default=float) + "\n")


def write_text(path: str, text: str) -> None:
    """Writes `text` as UTF-8, with no newline translation."""
    with atomic_write(path, "w") as f:
        f.write(text)


def _make_readable_and_durable(folder: str) -> None:
    """Gives a local folder tree the modes `os.makedirs` and `open` would (the umask's), since
    the writer in it may have made some 0700, and fsyncs its files."""
    umask = os.umask(0)
    os.umask(umask)
    for directory, _, names in os.walk(folder):
        os.chmod(directory, 0o777 & ~umask)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o666 & ~umask)
            _fsync_file(os.path.join(directory, name))


@contextlib.contextmanager
def atomic_directory(path: str):
    """Yields an empty temporary folder beside `path` to fill; on a normal exit it replaces the
    folder `path` (an existing one is moved aside first and deleted only once the new one is in
    place), on any exception it is removed. Locally the new folder gets the umask's modes.
    Concurrent writers of one folder each leave a complete folder, but one may fail instead of
    winning."""
    path = path.rstrip("/") or path
    tmp = temp_path(path)
    tf.io.gfile.makedirs(tmp)
    try:
        yield tmp
        if is_local(tmp):
            _make_readable_and_durable(tmp)
        if not tf.io.gfile.exists(path):
            tf.io.gfile.rename(tmp, path)
            return
        old = temp_path(path)
        tf.io.gfile.rename(path, old)
        try:
            tf.io.gfile.rename(tmp, path)
        finally:  # the old folder goes once a complete one is in place, else it comes back
            if tf.io.gfile.exists(path):
                _remove_quietly(old)
            else:
                tf.io.gfile.rename(old, path)
    except BaseException:
        _remove_quietly(tmp)
        raise
