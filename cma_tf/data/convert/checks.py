"""What a conversion checks about its labels and its losses, beyond each image on its own:
too many rows dropped, labels spelled two ways, vocabulary lines with spaces around the name,
and labels of a split that the training split never holds.

Plain functions of names and counts; `common.convert_split` and `choose_vocabulary` call them.
"""

import collections
import glob
import json
import os
from typing import Dict, List, Optional, Sequence

from cma_tf.errors import DataError

TRAIN_SPLIT = "train"  # config.data.train_split's default: the split the model learns from
MAX_NAMES = 8  # names listed in one warning line


def name_list(names: Sequence[str], limit: int = MAX_NAMES) -> str:
    """`'a', 'b', 'c'` (and `… (N more)` past `limit`)."""
    names = list(names)
    shown = ", ".join(repr(name) for name in names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def dropped_share_error(dropped: Dict[str, int], first: Dict[str, tuple], listed: int, max_dropped: Optional[float],
                        split: str, written: bool) -> Optional[str]:
    """The one-line refusal when more than `max_dropped` of `listed` rows are dropped, else None.

    Args:
        dropped: rows dropped per reason (every reason that skips a row).
        first: per reason, `(source_id, detail)` of its first row, named in the message.
        written: the rows were found while writing (the message then says the split was removed).
    """
    total = sum(dropped.values())
    if max_dropped is None or not listed or total <= max_dropped * listed:
        return None
    counts = ", ".join(f"{count} {reason}" for reason, count in dropped.items() if count)
    largest = max((reason for reason in dropped if dropped[reason]), key=lambda reason: dropped[reason])
    source_id, detail = first[largest]
    example = f"first {largest}: {source_id}" + (f", {detail}" if detail else "")
    outcome = "the split's records were removed again" if written else "nothing was written"
    return (f"{total} of the {listed} rows of split '{split}' are dropped ({counts}; {example}), more than "
            f"--max_dropped={max_dropped:g} ({max_dropped:.0%}) allows, so {outcome}: fix the list or the files, "
            "or raise --max_dropped to convert without them")


def spelling_key(name: str) -> str:
    """A label name with case and spacing ignored: names with one key are one label spelled two ways."""
    return " ".join(name.split()).casefold()


def spelling_variant_warnings(names: Sequence[str]) -> List[str]:
    """One warning per group of distinct `names` that differ only in case or spacing."""
    groups = collections.defaultdict(set)
    for name in names:
        groups[spelling_key(name)].add(name)
    return [
        f"labels {name_list(sorted(group))} differ only in case or spacing, so they are converted as "
        f"{len(group)} different labels: spell them one way in the list (and in --vocabulary)"
        for _, group in sorted(groups.items()) if len(group) > 1
    ]


def strip_vocabulary(path: str, names: Sequence[str], log=print) -> list:
    """`names` (read from the vocabulary file `path`) without spaces around each name, as the
    converters strip the labels they read; `log` gets one line when any had them.

    Raises:
        DataError: two lines name the same label once stripped.
    """
    stripped = [name.strip() for name in names]
    changed = [line for line, (name, bare) in enumerate(zip(names, stripped), start=1) if name != bare]
    seen = {}
    for line, name in enumerate(stripped, start=1):
        if name in seen:
            raise DataError(f"{path}: line {line} names label {name!r} again once the spaces around it are removed "
                            f"(first on line {seen[name]}): remove one of them")
        seen[name] = line
    if changed:
        where = ", ".join(str(line) for line in changed[:MAX_NAMES]) + (", …" if len(changed) > MAX_NAMES else "")
        log(f"warning: {path}: {len(changed)} lines have spaces around the label name (lines {where}): "
            "removed, as from the labels of the list")
    return stripped


def labels_missing_from_train(out_dir: str, split: str, per_class_counts: Dict[str, int],
                              train_split: str = TRAIN_SPLIT) -> List[str]:
    """Warnings for labels a split of `out_dir` holds that the training split never does.

    Converting `train_split`: against every other split already converted (its summary);
    converting another split: against `train_split`'s summary, when it was converted first.
    A model cannot learn such a label, and its AP still counts in that split's mAP.
    """
    def read_counts(name):
        path = os.path.join(out_dir, f"{name}_summary.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f).get("per_class_counts", {})

    if split == train_split:
        train, others = per_class_counts, {}
        for path in sorted(glob.glob(os.path.join(out_dir, "*_summary.json"))):
            name = os.path.basename(path)[: -len("_summary.json")]
            if name != train_split:
                others[name] = read_counts(name)
    else:
        train, others = read_counts(train_split), {split: per_class_counts}
        if train is None:
            return []
    warnings = []
    for name, counts in others.items():
        missing = [label for label, count in (counts or {}).items() if count and not train.get(label)]
        if missing:
            warnings.append(
                f"{len(missing)} labels occur in split '{name}' but never in split '{train_split}' "
                f"({name_list(missing)}): a model cannot learn them, yet their AP counts in '{name}''s mAP; "
                f"add '{train_split}' examples of them or leave them out of the vocabulary"
            )
    return warnings
