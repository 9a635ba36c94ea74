"""The shell blocks that the README and the guides say work pasted as is, as commands to run.

A block is tested when the line `<!-- tested -->` comes right before its opening fence. Its
lines are `python -m cma_tf.<module> …` (continued with `\\`), `python bench/<script>.py …`, the
set-up line `make install && . .venv/bin/activate` (the tests already run in that environment)
and comments. The blocks of one file run in order in one folder, so a later block may read what
an earlier one wrote.

`SMALL_SIZES` holds the flags appended to a command so that it runs in seconds: the documented
flags are all kept (a renamed one still fails), the appended ones only shrink the work
(absl takes the last value of a flag given twice, a config override likewise).
"""

import os
import shlex

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = "<!-- tested -->"
SETUP_LINES = ("make install && . .venv/bin/activate",)

SMALL_SIZES = {
    "cma_tf.datasets.demo": ["--num_train=140", "--num_val=40", "--num_shards=1"],
    "cma_tf.datasets.yt8m_synthetic": ["--train_videos=64", "--validate_videos=24", "--test_videos=4",
                                       "--min_frames=8", "--max_frames=16"],
    "cma_tf.train": ["--config.train.epochs=1", "--config.asge.steps=20"],
    "cma_tf.select": ["--heads=plain,mlgcn", "--epochs=1", "--seeds=2"],
    "cma_tf.visualize": ["--max_items=2"],
}
# Appended only where the command's own flags hold the first one (visualize embeddings has no --max_items).
SMALL_SIZES_IF = {"cma_tf.visualize": "--max_items"}


def documents():
    """The Markdown files a newcomer reads: the README and the guides."""
    guides = sorted(os.path.join("docs", name) for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    return ["README.md", *guides]


def tested_blocks(name):
    """`[(first line number, [lines])]` of the tested blocks of the Markdown file `name` (relative to ROOT)."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks, index = [], 0
    while index < len(lines):
        if lines[index].strip() == MARK:
            fence = lines[index + 1] if index + 1 < len(lines) else ""
            if fence.strip() != "```bash":
                raise ValueError(f"{name}:{index + 1}: {MARK} must come right before a ```bash fence")
            end = index + 2
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            blocks.append((index + 3, lines[index + 2:end]))
            index = end
        index += 1
    return blocks


def block_commands(name, first_line, lines):
    """`[(where, argv)]` of a block's commands, `argv` from `python` on (`where`: "file:line")."""
    commands, pending, start = [], "", None
    for offset, line in enumerate(lines):
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        start = first_line + offset if not pending else start
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical, pending = pending + stripped, ""
        where = f"{name}:{start}"
        if logical in SETUP_LINES:
            continue
        argv = shlex.split(logical, comments=True)
        if argv[:2] == ["python", "-m"] and len(argv) > 2 and argv[2].startswith("cma_tf."):
            commands.append((where, argv))
        elif len(argv) > 1 and argv[0] == "python" and argv[1].startswith("bench/"):
            commands.append((where, argv))
        else:
            raise ValueError(f"{where}: a tested block runs only `python -m cma_tf.…` and `python bench/…`, not: {logical}")
    return commands


def with_small_sizes(argv):
    """`argv` with the flags of `SMALL_SIZES` for its module appended."""
    module = argv[2] if argv[1] == "-m" else argv[1]
    extra = SMALL_SIZES.get(module, [])
    needed = SMALL_SIZES_IF.get(module)
    if needed and not any(arg.startswith(needed) for arg in argv):
        extra = []
    return argv + extra


def commands_of(name):
    """Every command of the tested blocks of `name`, in order."""
    return [command for first, lines in tested_blocks(name) for command in block_commands(name, first, lines)]


def check_flags(commands):
    """Parses each `(where, argv)` as its command line would, without running it: every flag must
    be one the command defines, every `--config.<field>` a field of the config given. Runs each
    module's `__main__` block with `absl.app.run` replaced by the parse alone. Returns the
    problems, one line each (empty when all parse). Call in a process of its own (it defines
    every command's flags, one command after another)."""
    import contextlib
    import io
    import runpy
    import sys

    from absl import app, flags

    class Parsed(Exception):
        pass

    def parse_only(main, argv=None, **kwargs):
        flags.FLAGS(sys.argv)
        raise Parsed

    app.run = parse_only
    baseline = set(flags.FLAGS)
    problems = []
    for where, argv in commands:
        for flag in set(flags.FLAGS) - baseline:  # the previous command's flags, and the modules that define them
            defining = flags.FLAGS.find_module_defining_flag(flag, default="__main__")
            if defining != "__main__":
                sys.modules.pop(defining, None)
            delattr(flags.FLAGS, flag)
        flags.FLAGS.unparse_flags()
        module = argv[2] if argv[1] == "-m" else None
        sys.argv = [module or argv[1], *argv[(3 if module else 2):]]
        said = io.StringIO()
        try:
            with contextlib.redirect_stderr(said):
                if module:
                    runpy.run_module(module, run_name="__main__", alter_sys=False)
                else:
                    runpy.run_path(os.path.join(ROOT, argv[1]), run_name="__main__")
            problems.append(f"{where}: {' '.join(argv[:3])} did not reach absl's app.run")
        except Parsed:
            pass
        except (SystemExit, Exception) as error:  # a command line's own refusal exits 2, saying why on stderr
            message = " ".join(said.getvalue().split()) or f"{type(error).__name__}: {error}"
            problems.append(f"{where}: {' '.join(argv[:3])}: {message}")
    return problems
