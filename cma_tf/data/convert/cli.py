"""Flags and the `main` shared by the converter command lines.

Only a converter run as a command line imports this module (importing a converter defines no
required flag); its `__main__` block adopts these flags (absl lists in `--help` the key flags of
the main module, and `adopt_module_key_flags` adopts them for its caller) and calls `run_command`.
"""

import json
import sys

from absl import flags

from cma_tf.data.convert.common import SKIPPING_REASONS, ConversionError, choose_vocabulary, convert_split
from cma_tf.errors import DataError

OUT_DIR = flags.DEFINE_string("out_dir", None, "Output directory: shards, labels.txt, reports.")
SPLIT = flags.DEFINE_string(
    "split", "train", "Name of the split written: shards are named <split>-NNNNN-of-NNNNN.tfrecord."
)
NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 16, "Number of shards for this split (aim for 100-200 MB each at scale)."
)
NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", None, "Worker processes (default: one per core, at most one per shard)."
)
STRICT = flags.DEFINE_bool(
    "strict", False,
    "Exit with status 1 if any image was skipped or any label dropped (everything else is still "
    "written and listed in <split>_problems.tsv).",
)
flags.mark_flags_as_required(["out_dir"])


def run_conversion(images, vocabulary, listing_problems=(), vocabulary_file=None, empty_hint=None, **options):
    """Converts, prints the summary (and its warnings, on stderr), and exits 1 in strict mode
    when there were problems.

    `vocabulary` is the one the converter read from its input and `vocabulary_file` the
    `--vocabulary` flag; `choose_vocabulary` picks between them and `<out_dir>/labels.txt`.
    `options` go to `convert_split` (`keep_empty`, `max_dropped`, `notes`, `warnings`);
    `empty_hint` ends the line saying how many images were written without labels.

    Raises:
        DataError: the input lists no image, the vocabulary would change `labels.txt`, more
            rows are dropped than `max_dropped` allows, or no image could be written (then the
            problem report says why).
    """
    if not images:
        raise DataError("the input lists no images: nothing to convert")
    vocabulary = choose_vocabulary(OUT_DIR.value, vocabulary, vocabulary_file)
    try:
        summary = convert_split(
            images, vocabulary, OUT_DIR.value, SPLIT.value, NUM_SHARDS.value, NUM_WORKERS.value, STRICT.value,
            listing_problems=listing_problems, **options,
        )
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\ninterrupted: finished shards are kept; run the same command again to resume", file=sys.stderr)
        sys.exit(130)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("per_class_counts", "warnings")}, indent=2))
    print("per-class counts:", json.dumps(summary["per_class_counts"]))
    if summary["images_without_labels"]:
        print(f"{summary['images_without_labels']} images have no label: written as negatives of every label"
              + (f" ({empty_hint})" if empty_hint else ""))
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if not summary["images_written"]:
        reasons = ", ".join(f"{summary['problems'][reason]} {reason}" for reason in SKIPPING_REASONS
                            if summary["problems"][reason])
        raise DataError(
            f"none of the {summary['images_listed']} images of split '{SPLIT.value}' could be written "
            f"({reasons}): see {summary['problem_report']}"
        )
    return summary


def run_command(read_source, required_flags, vocabulary_flag=None):
    """The converter command line: parses it (also requiring `required_flags`), then converts.

    `read_source()` reads the converter's input named by the parsed flags and returns
    `(images, vocabulary)`, `(images, vocabulary, listing_problems)` or those and a dict of
    `run_conversion`'s keyword arguments; `vocabulary_flag` is the converter's `--vocabulary`,
    if it has one.
    """
    from cma_tf import cli

    flags.mark_flags_as_required(required_flags)

    def main(argv):
        del argv
        vocabulary_file = None if vocabulary_flag is None else vocabulary_flag.value
        def convert():
            images, vocabulary, *rest = read_source()
            options = rest[1] if len(rest) > 1 else {}
            return run_conversion(images, vocabulary, *rest[:1], vocabulary_file=vocabulary_file, **options)

        cli.run_reporting_user_errors(convert)

    cli.run(main)
