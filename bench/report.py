"""What every benchmark does: print its figures as Markdown tables, then write them as JSON and
print them as the last line."""

import json
import os
import subprocess
import sys


def write_report(result, json_out):
    """Writes `result` to `json_out` (indented) and prints it as one JSON line on stdout."""
    os.makedirs(os.path.dirname(json_out) or ".", exist_ok=True)
    with open(json_out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def mean_std(values):
    """Mean and sample std (ddof 1) of the values that are not None: `(None, None)` from none,
    the std None from one (no spread is known)."""
    import numpy as np

    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def stopped_rising(values, last_epochs, tolerance):
    """Whether a per-epoch score stopped rising: the best of the `last_epochs` is less than
    `tolerance` above the best before them (`values` longer than `last_epochs`)."""
    return max(values[-last_epochs:]) - max(values[:-last_epochs]) < tolerance


def print_table(headers, rows, align):
    """A Markdown table: `headers`, `rows` of already formatted cells, `align` one letter a
    column ("l" left, "r" right)."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join({"l": "---", "r": "---:"}[a] for a in align) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


def peak_rss_mb():
    """This process's peak resident memory in MiB: the kernel's high-water mark of its own
    address space (`VmHWM`), where Linux has one. `ru_maxrss` is not that: Linux keeps it across
    `execve`, and a worker started by `subprocess` (vfork, then exec) inherits its parent's
    resident size at the fork, so a worker started from a benchmark that holds gigabytes of
    cached data would report the parent's memory as its own."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux (bytes on macOS)


def run_worker(script, flags):
    """Runs `script` (a benchmark's own file) with `--worker` and `flags` in a fresh Python
    process, so that its peak RSS is its own (TensorFlow's C++ logs off). Returns
    `(result, returncode)`: the JSON object of its last stdout line, or `None` when it failed
    (the end of its stderr is then copied to ours; a negative code is a signal, e.g. the
    kernel's out-of-memory kill)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run([sys.executable, os.path.abspath(script), "--worker", *flags],
                               capture_output=True, text=True, env=env)
    if completed.returncode:
        sys.stderr.write(completed.stderr[-3000:])
        return None, completed.returncode
    return json.loads(completed.stdout.strip().splitlines()[-1]), 0
