"""One training at a time per workdir: a lock file held for the whole run.

Two trainings of one workdir would interleave their epochs in `history.csv` and leave whichever
checkpoints were written last. `hold_lock` takes an exclusive `fcntl.flock` on a file in the
workdir and writes the holder (pid, host, start time) into it; a second taker fails at once
with `WorkdirLocked` naming that holder. The operating system releases a `flock` when its holder
dies, however it dies (SIGKILL included), so a lock is never stale: the file a killed run leaves
behind is taken over by the next run. A normal exit removes the file.

Only local paths are locked (`gs://` and other remote workdirs have no such lock: there a
second run is not prevented). A workdir on NFS is locked through the NFS lock service, which
Linux maps `flock` to; on a file system without locks the run goes on unlocked, saying so.
"""

import contextlib
import datetime
import errno
import json
import os
import socket
import time

from cma_tf.atomic import is_local
from cma_tf.errors import ConfigError

_HOLDER_READ_TRIES = 20  # a holder writes its name right after locking: wait up to ~1 s for it
_HOLDER_READ_PAUSE = 0.05


class WorkdirLocked(ConfigError):
    """Another process holds the workdir's lock."""


@contextlib.contextmanager
def hold_lock(path: str, command: str = "python -m cma_tf.train"):
    """Holds the lock file `path` (made, with its folder, if missing) for the block. A folder it
    made is removed again if the block left it empty (a run refused before it wrote anything
    leaves no workdir behind).

    Raises:
        WorkdirLocked: another process holds it; one line naming its pid and host.
    """
    if not is_local(path):
        yield
        return
    folder = os.path.dirname(path) or "."
    made_folder = not os.path.isdir(folder)
    descriptor = _acquire(path, command)
    try:
        yield
    finally:
        if descriptor is not None:
            _release(path, descriptor)
        if made_folder:
            with contextlib.suppress(OSError):  # not empty: the run wrote its files there
                os.rmdir(folder)


def read_holder(path: str):
    """`{"pid", "host", "started", "command"}` written by the holder of `path`, or None."""
    try:
        with open(path) as f:
            return json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None


def _acquire(path, command):
    import fcntl

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(descriptor)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise WorkdirLocked(_held_message(path)) from None
            print(f"note: cannot lock {path} ({error.strerror}): a second training of this workdir is not prevented")
            return None
        # The file may have been removed (its holder exited) between our open and our lock: then
        # we hold a file nobody else sees, and try again with the one at `path` now.
        if _same_file(descriptor, path):
            break
        os.close(descriptor)
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, (json.dumps(holder) + "\n").encode(), 0)
    return descriptor


def _release(path, descriptor):
    try:
        if _same_file(descriptor, path):
            os.remove(path)  # while still locked, so no one takes a file that is going away
    finally:
        os.close(descriptor)  # releases the lock


def _same_file(descriptor, path):
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)


def _held_message(path):
    holder = None
    for _ in range(_HOLDER_READ_TRIES):
        holder = read_holder(path)
        if holder:
            break
        time.sleep(_HOLDER_READ_PAUSE)
    workdir = os.path.dirname(path) or "."
    if holder:
        who = f"pid {holder.get('pid')} on {holder.get('host')}, `{holder.get('command')}` since {holder.get('started')}"
    else:
        who = "a process that has not written its pid yet"
    return (
        f"{workdir} is in use by another training ({who}; lock {path}): wait for it to end or stop it, "
        "or train into another --workdir"
    )
