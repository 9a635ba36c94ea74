"""A CSV list of images → TFRecords: `python -m cma_tf.data.convert.csv_list`.

Each row is `path,label1|label2|…` (a header row `path,labels` is allowed; `--label_separator`
sets the `|`, `--labels_in_columns` reads one label a cell instead). Relative paths are taken
from `--images` (default: the CSV's own directory). The vocabulary is `--vocabulary` if given,
else `<out_dir>/labels.txt` if an earlier split made it (every split of a directory shares one),
else every label seen, sorted; labels outside it are reported as `unknown_label`. A malformed
row is reported as `bad_annotation` with its line number.

Refused in one line, before anything is written: a file that is not UTF-8, has no data rows,
or has a quote that is not closed on its own line (with the line number); labels that most
rows separate with another character (`;`, `|`, a tab, `,`) than `--label_separator`; rows
that mostly have more than two cells without `--labels_in_columns`; a list none of whose
images exists (naming where the paths were resolved); and more than `--max_dropped` (5 %) of
the rows dropped (counts per reason; found while writing, the split is removed again).

A row without labels is an image that has none of them (the negatives of a one-label data
set): kept, and counted in the summary (`images_without_labels`), unless `--skip_empty`.
A row identical to an earlier one (same path, same labels) is written once unless
`--keep_duplicate_rows`. Warned about: labels that differ only in case or spacing, an image
listed again with other labels, and labels of a split that never occur in `train`.

Example:
    python -m cma_tf.data.convert.csv_list --csv=train.csv --out_dir=data/mine --split=train
"""

import csv
import dataclasses
import io
import os
from typing import Optional

from absl import flags

from cma_tf.data.convert.common import BAD_ANNOTATION, Problem, SourceImage
from cma_tf.data.vocab import vocabulary_path
from cma_tf.errors import DataError

LABEL_SEPARATOR = "|"
# Characters that separate labels in lists seen in the wild; one of these (other than the
# configured separator) in most rows' labels means the list uses it.
SEPARATOR_CANDIDATES = ("|", ";", "\t", ",")
HEADER_NAMES = {"path", "image", "file", "filename"}
MAX_DROPPED = 0.05

_CSV = flags.DEFINE_string("csv", None, "The CSV file: rows of path,label1|label2|….")
_LABEL_SEPARATOR = flags.DEFINE_string(
    "label_separator", LABEL_SEPARATOR,
    "The character between the labels of a row's label cell ('tab' for a tab). The conversion stops, naming "
    "it, when most rows' labels hold another of | ; tab , instead.",
)
_LABELS_IN_COLUMNS = flags.DEFINE_bool(
    "labels_in_columns", False,
    "Read every cell after the path as one label (rows path,label1,label2,…, as a spreadsheet saves one label "
    "a cell; empty cells are ignored). Without it a row has two cells and a list whose rows mostly have more "
    "is refused.",
)
_SKIP_EMPTY = flags.DEFINE_bool(
    "skip_empty", False,
    "Leave out rows that name no label. By default they are kept: an image with none of the labels is a "
    "negative for every label (a one-label data set needs them), and the summary counts them "
    "(images_without_labels).",
)
_KEEP_DUPLICATE_ROWS = flags.DEFINE_bool(
    "keep_duplicate_rows", False,
    "Write a row identical to an earlier one (same path, same labels) again. By default only the first is "
    "written; either way the summary counts them (duplicate_rows_dropped / duplicate_rows_kept).",
)
_MAX_DROPPED = flags.DEFINE_float(
    "max_dropped", MAX_DROPPED,
    "The largest share of the rows that may be dropped (malformed rows, missing or undecodable images, rows "
    "whose labels are all outside the vocabulary) before the conversion stops with the counts per reason and "
    "writes nothing (0.05 = 5 %; 1 never stops). Rows left out on request (--skip_empty, duplicates) do "
    "not count.",
    lower_bound=0.0, upper_bound=1.0,
)
# --images, --vocabulary are also defined by another converter: allow_override lets one process import
# several converters (tests, notebooks) without absl's DuplicateFlagError.
_IMAGES = flags.DEFINE_string(
    "images", None,
    "Base directory of the CSV's relative image paths (default: the CSV's own directory, not the working "
    "directory). When no listed image exists there, the conversion stops saying where it looked.",
    allow_override=True
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


@dataclasses.dataclass
class CsvList:
    """What a CSV list holds: its images, the labels its rows name (sorted), the rows that
    could not be read (`Problem`s), warnings for the user, and counts for the summary."""

    images: list
    labels: list
    problems: list
    warnings: list
    notes: dict


def _label_cells(row, label_separator, labels_in_columns):
    """The label names of a row's cells after the path (stripped, empty ones left out)."""
    cells = row[1:] if labels_in_columns else row[1:2]
    pieces = (piece for cell in cells for piece in cell.split(label_separator))
    return tuple(label for label in (piece.strip() for piece in pieces) if label)


def _other_separator(label_fields, label_separator):
    """`(separator, rows holding it, example)` for a candidate separator other than
    `label_separator` that more than half of the label fields naming something contain."""
    fields = [(number, field) for number, field in label_fields if field.strip()]
    for candidate in SEPARATOR_CANDIDATES:
        if candidate == label_separator:
            continue
        holding = [(number, field) for number, field in fields if candidate in field.strip()]
        if fields and len(holding) * 2 > len(fields):
            return candidate, len(holding), len(fields), holding[0]
    return None


def read_csv_list(csv_path: str, image_dir: str = None, label_separator: str = LABEL_SEPARATOR,
                  labels_in_columns: bool = False, skip_empty: bool = False, keep_duplicates: bool = False) -> CsvList:
    """Reads the CSV into a `CsvList`.

    Args:
        image_dir: base of relative paths (default: the CSV's own directory).
        label_separator: what separates the labels within the label cell.
        labels_in_columns: every cell after the path is a label (a spreadsheet's one label a
            cell); otherwise a row has two cells (empty cells at its end are ignored).
        skip_empty: leave out rows that name no label (default: kept, as images that have
            none of the labels: the negatives of a one-label data set).
        keep_duplicates: keep rows identical to an earlier one (same path, same labels);
            by default only the first is kept. Either way they are counted.

    Raises:
        DataError: the file is missing, not UTF-8, not CSV (a quote left open, a NUL byte), has
            no usable row, most rows hold another label separator or (without
            `labels_in_columns`) more than two cells.
    """
    if not os.path.exists(csv_path):
        raise DataError(f"CSV file not found: {csv_path}")
    image_root = image_dir or os.path.dirname(os.path.abspath(csv_path))
    rows, problems = [], []
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
        rows.append((number, row))
    if not rows:
        raise DataError(f"{csv_path}: the file has no rows of 'path,label1|label2' (it is empty or only a header)")
    shape = "path,label1,label2,…" if labels_in_columns else f"path,label1{label_separator}label2"
    if not labels_in_columns:
        wide = [(number, row) for number, row in rows if len(_without_trailing_empty_cells(row)) > 2]
        if len(wide) * 2 > len(rows):
            raise DataError(
                f"{csv_path}: {len(wide)} of {len(rows)} rows have more than two cells (first, line {wide[0][0]}: "
                f"{wide[0][1]!r}), as one label a cell: pass --labels_in_columns to read every cell after the path "
                f"as a label, or put each row's labels in its second cell joined by '{label_separator}'"
            )
    label_fields = [(number, cell) for number, row in rows
                    for cell in (row[1:] if labels_in_columns else row[1:2])]
    other = _other_separator(label_fields, label_separator)
    if other is not None:
        separator, holding, naming, (number, field) = other
        raise DataError(
            f"{csv_path}: the labels of {holding} of the {naming} rows naming labels contain {separator!r} "
            f"(first, line {number}: {field!r}) while labels are separated by {label_separator!r}: if {separator!r} "
            f"separates labels, pass --label_separator={_flag_value(separator)}"
        )
    images, seen, first_listing, notes, warnings = [], set(), {}, {}, []
    duplicates, conflicts, empty_skipped = 0, [], 0
    for number, row in rows:
        if not labels_in_columns:
            row = _without_trailing_empty_cells(row)
        # One label a cell: a row may be its path alone (no label); else exactly path and labels.
        if not row[0].strip() or (not labels_in_columns and len(row) != 2):
            hint = " (one label a cell? --labels_in_columns reads them)" if len(row) > 2 else ""
            problems.append(Problem(f"line {number}", row[0], BAD_ANNOTATION,
                                    f"{csv_path}:{number}: expected '{shape}', got {row!r}{hint}"))
            continue
        source_id = row[0].strip()
        labels = tuple(dict.fromkeys(_label_cells(row, label_separator, labels_in_columns)))
        if not labels and skip_empty:
            empty_skipped += 1
            continue
        earlier = first_listing.setdefault(source_id, (number, frozenset(labels)))
        if earlier[0] != number:
            if earlier[1] == frozenset(labels):
                duplicates += 1
                if not keep_duplicates:
                    continue
            else:
                conflicts.append((source_id, earlier[0], number))
        seen.update(labels)
        images.append(SourceImage(os.path.join(image_root, source_id), source_id, labels))
    if not images and problems:
        raise DataError(
            f"{csv_path}: none of its {len(problems)} rows is '{shape}' "
            f"(first, {problems[0].source_id}: {problems[0].detail.split(': ', 1)[1]})"
        )
    if empty_skipped:
        notes["empty_rows_skipped"] = empty_skipped
    if duplicates:
        notes["duplicate_rows_kept" if keep_duplicates else "duplicate_rows_dropped"] = duplicates
        warnings.append(
            f"{csv_path}: {duplicates} rows repeat an earlier row (same path, same labels): "
            + ("kept, as --keep_duplicate_rows asks" if keep_duplicates else
               "only the first of each is written (--keep_duplicate_rows keeps them all)")
        )
    if conflicts:
        source_id, first, again = conflicts[0]
        warnings.append(
            f"{csv_path}: {len(conflicts)} rows list an image listed earlier with different labels (first, "
            f"{source_id} on lines {first} and {again}): each row is written as its own example; "
            "merge them into one row if they are one image"
        )
    return CsvList(images, sorted(seen), problems, warnings, notes)


def check_an_image_exists(csv_path: str, image_dir: Optional[str], images) -> None:
    """A list none of whose images exists was resolved against the wrong directory: a
    `DataError` saying which one it was and naming `--images`."""
    if not images or any(os.path.exists(image.path) for image in images):
        return
    image_root = image_dir or os.path.dirname(os.path.abspath(csv_path))
    where = (f"--images={image_dir}" if image_dir else
             f"{image_root}, the CSV's directory (relative paths are read from there unless --images is given)")
    raise DataError(
        f"{csv_path}: none of the {len(images)} images it lists exists (first: {images[0].source_id} → "
        f"{images[0].path}); paths were resolved against {where}: pass --images=DIR, the directory the paths "
        "are relative to"
    )


def csv_source_images(csv_path: str, image_dir: str = None, vocabulary=None, **options):
    """`(images, vocabulary, problems)` from the CSV (`options` as `read_csv_list`'s): the
    vocabulary is `vocabulary` if given, else every label the rows name, sorted.

    Raises:
        DataError: as `read_csv_list`, and (without `vocabulary`) when no row names a label.
    """
    listing = read_csv_list(csv_path, image_dir, **options)
    if not vocabulary and not listing.labels:
        raise DataError(f"{csv_path}: no row names a label (rows are 'path,label1|label2'): nothing to convert")
    return listing.images, list(vocabulary) if vocabulary else listing.labels, listing.problems


def _without_trailing_empty_cells(row):
    """A spreadsheet pads every row with empty cells to the widest one."""
    end = len(row)
    while end > 2 and not row[end - 1].strip():
        end -= 1
    return row[:end]


def _flag_value(separator):
    """How to write `separator` on a shell command line."""
    return "tab" if separator == "\t" else f"'{separator}'"


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # imported only by the command line; adopted here, in the main module, so --help lists them.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)
    def read_source():
        separator = "\t" if _LABEL_SEPARATOR.value in ("tab", "\\t") else _LABEL_SEPARATOR.value
        if len(separator) != 1:
            raise DataError(f"--label_separator={_LABEL_SEPARATOR.value!r}: give one character ('tab' for a tab)")
        listing = read_csv_list(_CSV.value, _IMAGES.value, separator, _LABELS_IN_COLUMNS.value, _SKIP_EMPTY.value,
                                _KEEP_DUPLICATE_ROWS.value)
        check_an_image_exists(_CSV.value, _IMAGES.value, listing.images)
        if not listing.labels and not _VOCABULARY.value and not os.path.exists(vocabulary_path(_shared_flags.OUT_DIR.value)):
            raise DataError(f"{_CSV.value}: no row names a label (rows are 'path,label1{separator}label2'): "
                            "nothing to convert")
        options = {"keep_empty": True, "max_dropped": _MAX_DROPPED.value, "notes": listing.notes,
                   "warnings": listing.warnings, "empty_hint": "--skip_empty drops them"}
        return listing.images, listing.labels, listing.problems, options

    _shared_flags.run_command(read_source, ["csv"], _VOCABULARY)
