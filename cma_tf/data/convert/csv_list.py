"""A CSV list of images → TFRecords: `python -m cma_tf.data.convert.csv_list`.

Each row is `path,label1|label2|…` (a header row `path,labels` is allowed). Relative paths are
taken from `--images` (default: the CSV's own directory). The vocabulary is `--vocabulary` if
given (labels outside it are reported as `unknown_label`), else every label seen, sorted.
A malformed row is reported as `bad_annotation` with its line number.

Example:
    python -m cma_tf.data.convert.csv_list --csv=train.csv --out_dir=data/mine --split=train
"""

import csv
import os

from absl import flags

from cma_tf.data.convert.common import BAD_ANNOTATION, Problem, SourceImage
from cma_tf.errors import DataError

LABEL_SEPARATOR = "|"
HEADER_NAMES = {"path", "image", "file", "filename"}

_CSV = flags.DEFINE_string("csv", None, "The CSV file: rows of path,label1|label2|….")
# --images, --vocabulary are also defined by another converter: allow_override lets one process import
# several converters (tests, notebooks) without absl's DuplicateFlagError.
_IMAGES = flags.DEFINE_string(
    "images", None, "Base directory of relative image paths (default: the CSV's directory).", allow_override=True
)
_VOCABULARY = flags.DEFINE_string(
    "vocabulary", None, "Optional label file (one name per line) fixing labels and order.", allow_override=True
)


def csv_source_images(csv_path: str, image_dir: str = None, vocabulary=None):
    """`(images, vocabulary, problems)` from the CSV."""
    if not os.path.exists(csv_path):
        raise DataError(f"CSV file not found: {csv_path}")
    image_dir = image_dir or os.path.dirname(os.path.abspath(csv_path))
    images, problems, seen = [], [], set()
    with open(csv_path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's BOM is not data
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if number == 1 and row[0].strip().lower() in HEADER_NAMES:
                continue
            if len(row) != 2 or not row[0].strip():
                problems.append(Problem(f"line {number}", row[0] if row else "", BAD_ANNOTATION,
                                        f"{csv_path}:{number}: expected 'path,label1|label2', got {row!r}"))
                continue
            path = os.path.join(image_dir, row[0].strip())
            labels = tuple(label.strip() for label in row[1].split(LABEL_SEPARATOR) if label.strip())
            seen.update(labels)
            images.append(SourceImage(path, row[0].strip(), labels))
    return images, list(vocabulary) if vocabulary else sorted(seen), problems


def main(argv):
    del argv
    from cma_tf import cli
    from cma_tf.data.convert.cli import run_conversion
    from cma_tf.data.vocab import read_vocabulary

    def convert():
        vocabulary = read_vocabulary(_VOCABULARY.value) if _VOCABULARY.value else None
        images, vocabulary, problems = csv_source_images(_CSV.value, _IMAGES.value, vocabulary)
        return run_conversion(images, vocabulary, problems)

    cli.run_reporting_user_errors(convert)


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # which main() would import only after absl has parsed the command line.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)  # so --help lists the shared flags too

    flags.mark_flags_as_required(["csv"])
    from cma_tf import cli as _cli

    _cli.run(main)
