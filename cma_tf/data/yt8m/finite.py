"""Which YouTube-8M record holds NaN or infinite features, in words.

Only video-level records can: their `mean_rgb` / `mean_audio` are floats, while frame-level
features are 8-bit codes. A non-finite feature makes the model's scores non-finite, which
training sees as a NaN loss and evaluation as NaN predictions; this names the record instead.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from cma_tf.data.record_files import read_records
from cma_tf.data.yt8m import records

# Records read at most by `first_non_finite` (video-level records are ~5 kB: a few seconds).
SCAN_RECORDS = 200_000


def non_finite_feature(feature_map, names: Sequence[str]) -> Optional[str]:
    """The first of `names` whose float values in a `tf.train.Features.feature` map are not all
    finite, or None."""
    for name in names:
        if name in feature_map and not np.isfinite(np.asarray(feature_map[name].float_list.value)).all():
            return name
    return None


def describe(name: str) -> str:
    return f"feature '{name}' holds NaN or infinite values"


def first_non_finite(files: Sequence[str], feature_names: Sequence[str], limit: int = SCAN_RECORDS) -> Optional[str]:
    """One line naming the first video-level record of `files` with a non-finite value in one
    of `feature_names` (file, record index, video id, feature), or None if the first `limit`
    records have none."""
    seen = 0
    for path in files:
        for index, raw in read_records(path, limit - seen):
            feature_map = tf.train.Example.FromString(raw).features.feature
            name = non_finite_feature(feature_map, feature_names)
            if name:
                ids = feature_map[records.ID].bytes_list.value if records.ID in feature_map else []
                video_id = ids[0].decode("utf-8", "replace") if ids else ""
                return f"{path}: record {index} (id {video_id!r}): {describe(name)}"
            seen += 1
        if seen >= limit:
            return None
    return None
