"""Label vocabularies: one label name a line, line number = label id."""

import os

import tensorflow as tf

from cma_tf.atomic import write_text
from cma_tf.errors import DataError

VOCAB_FILENAME = "labels.txt"


def vocabulary_path(data_dir: str) -> str:
    return os.path.join(data_dir, VOCAB_FILENAME)


def write_vocabulary(path: str, names, unique: bool = True) -> None:
    """Writes one name a line, atomically; `unique=False` as in `read_vocabulary`. An empty
    list is refused: `read_vocabulary` would reject the file it makes."""
    names = list(names)
    if not names:
        raise DataError(f"{path}: no label names to write (the input names no labels)")
    for line, name in enumerate(names, start=1):
        if not name or "\n" in name:
            raise DataError(f"{path}: label {line} is empty or contains a newline: {name!r}")
    if unique and len(set(names)) != len(names):
        raise DataError(f"{path}: label names repeat")
    write_text(path, "".join(name + "\n" for name in names))


def read_vocabulary(path: str, unique: bool = True) -> list:
    """Reads a vocabulary; errors name the file and the line. `unique=False` accepts a name
    twice (a run's own copy of a YouTube-8M vocabulary, whose ids, not names, are unique)."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"Label vocabulary not found: {path} (one label name per line)")
    with tf.io.gfile.GFile(path, "r") as f:
        names = [line.rstrip("\r\n") for line in f]
    while names and not names[-1].strip():
        names.pop()
    if not names:
        raise DataError(f"{path}: the label vocabulary is empty")
    seen = {}
    for line, name in enumerate(names, start=1):
        if not name.strip():
            raise DataError(f"{path}: line {line} is empty; every line must name one label")
        if unique and name in seen:
            raise DataError(f"{path}: line {line} repeats label {name!r} (first on line {seen[name]})")
        seen[name] = line
    return names


def check_same_vocabulary(given, expected, given_name: str, expected_name: str, fix: str) -> None:
    """The one rule for a vocabulary given beside the one a model or records were made with: the
    same names in the same order (a class id is a position, so a reordered list would put every
    name on another output). A `DataError`, one line naming the first id that differs and both
    names, then `fix`:
    `<given_name> differs from <expected_name> at id 3 (line 4): 'dog' instead of 'cat'; <fix>`."""
    given, expected = list(given), list(expected)
    if given == expected:
        return
    first = next((i for i, (a, b) in enumerate(zip(given, expected)) if a != b), min(len(given), len(expected)))

    def at(names):
        return repr(names[first]) if first < len(names) else f"the end of the list ({len(names)} labels)"

    raise DataError(
        f"{given_name} differs from {expected_name} at id {first} (line {first + 1}): {at(given)} instead of "
        f"{at(expected)}; {fix}"
    )


def first_difference(old, new) -> str:
    """Where two vocabularies part, for messages: `line 3: 'cat' vs 'dog'` (line = id + 1)."""
    for line, (a, b) in enumerate(zip(old, new), start=1):
        if a != b:
            return f"line {line}: {a!r} vs {b!r}"
    return f"{len(old)} labels vs {len(new)}"
