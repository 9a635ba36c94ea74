"""A CSV list of images → TFRecords: `python -m cma_tf.data.convert.csv_list`.

Each row is `path,label1|label2|…` (a header row `path,labels` is allowed). Relative paths are
taken from `--images` (default: the CSV's own directory). The vocabulary is `--vocabulary` if
given, else `<out_dir>/labels.txt` if an earlier split made it (every split of a directory
shares one), else every label seen, sorted; labels outside it are reported as
`unknown_label`. A malformed row is reported as `bad_annotation` with its line number. A file
that is not UTF-8, has no data rows, or has a quote that is not closed on its own line is
refused with the line number.

Example:
    python -m cma_tf.data.convert.csv_list --csv=train.csv --out_dir=data/mine --split=train
"""

import csv
import io
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


def _read_text(csv_path: str) -> str:
    """The file as text; bytes that are not UTF-8 are a `DataError` naming the line."""
    with open(csv_path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")  # -sig: a spreadsheet's BOM is not data
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{csv_path}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x}): save the file as UTF-8 "
            "(in a spreadsheet: 'CSV UTF-8')"
        ) from error


def csv_source_images(csv_path: str, image_dir: str = None, vocabulary=None):
    """`(images, vocabulary, problems)` from the CSV.

    Raises:
        DataError: the file is missing, not UTF-8, not CSV (a quote left open, a NUL byte), has
            no usable row, or (without `vocabulary`) names no label.
    """
    if not os.path.exists(csv_path):
        raise DataError(f"CSV file not found: {csv_path}")
    image_dir = image_dir or os.path.dirname(os.path.abspath(csv_path))
    images, problems, seen = [], [], set()
    text = _read_text(csv_path)
    last_line = len(io.StringIO(text, newline="").readlines())
    reader = csv.reader(io.StringIO(text, newline=""))
    first_line = 1  # of the row being read: a quoted field may span lines
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            hint = ": is a quote opened on it never closed?" if "field limit" in str(error) else ""
            raise DataError(f"{csv_path}: line {first_line}: not a CSV row ({error}){hint}") from error
        number, first_line = first_line, reader.line_num + 1
        if reader.line_num > number:
            raise DataError(
                f"{csv_path}: line {number}: a quote opened on this line is not closed on it (the row runs on to "
                f"{'the end of the file' if reader.line_num >= last_line else f'line {reader.line_num}'}): "
                "close the quote or remove it"
            )
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
    if not images:
        if problems:
            raise DataError(
                f"{csv_path}: none of its {len(problems)} rows is 'path,label1|label2' "
                f"(first, {problems[0].source_id}: {problems[0].detail.split(': ', 1)[1]})"
            )
        raise DataError(f"{csv_path}: the file has no rows of 'path,label1|label2' (it is empty or only a header)")
    if not vocabulary and not seen:
        raise DataError(f"{csv_path}: no row names a label (rows are 'path,label1|label2'): nothing to convert")
    return images, list(vocabulary) if vocabulary else sorted(seen), problems


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # imported only by the command line; adopted here, in the main module, so --help lists them.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)
    _shared_flags.run_command(lambda: csv_source_images(_CSV.value, _IMAGES.value), ["csv"], _VOCABULARY)
