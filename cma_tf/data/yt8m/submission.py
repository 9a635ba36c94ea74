"""Segment-level inference and the Kaggle 2019 submission (YouTube-8M Segments).

Every video is cut into 5-frame segments starting at frames 0, 5, 10, … (the last one may be
shorter), as the starter code's `inference.py` (`get_segments`) does; each segment is scored by
the model on its own frames (resampled to the model's `T`, `frames.py`). For each segment the
`top_k` best of the rated classes (`segment_label_ids.csv`) enter that class's ranking, which
keeps the `max_per_class` best segments; the CSV is `Class,Segments` with one line per class and
its segment ids (`<video id>:<start frame>`) by decreasing score — the starter code's format.
"""

import heapq
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from cma_tf.atomic import atomic_write
from cma_tf.data.yt8m.frames import resample_frames

SEGMENT_SIZE = 5


def split_into_segments(video_matrix, num_frames, segment_size=SEGMENT_SIZE):
    """One video's `[F, D]` frames (first `num_frames` real) → `(starts [S], segments
    [S, segment_size, D], lengths [S])`; the last segment holds the remaining frames."""
    starts = np.arange(0, int(num_frames), segment_size)
    lengths = np.minimum(segment_size, int(num_frames) - starts)
    index = np.minimum(starts[:, None] + np.arange(segment_size)[None, :], max(int(num_frames) - 1, 0))
    return starts, video_matrix[index], lengths


def score_segments(model, segments, lengths, frames):
    """σ(model) on segments `[S, segment_size, D]` of `lengths` real frames each → `[S, N]`."""
    inputs = resample_frames(tf.constant(segments, tf.float32), tf.constant(lengths, tf.int32), frames)
    logits = model(inputs, training=False)
    return tf.sigmoid(tf.cast(logits, tf.float32)).numpy()


def iterate_segment_scores(model, video_batches: Iterable[dict], frames, batch_segments=512):
    """Yields `(segment ids, scores [S, N])` for the batches of `readers.frame_records`."""
    pending_ids, pending_segments, pending_lengths = [], [], []

    def flush():
        ids, segments, lengths = pending_ids[:], np.concatenate(pending_segments), np.concatenate(pending_lengths)
        pending_ids.clear(), pending_segments.clear(), pending_lengths.clear()
        return ids, score_segments(model, segments, lengths, frames)

    for batch in video_batches:
        matrices, counts = batch["video_matrix"].numpy(), batch["num_frames"].numpy()
        for video_id, matrix, count in zip(batch["video_ids"].numpy(), matrices, counts):
            starts, segments, lengths = split_into_segments(matrix, count)
            pending_ids.extend(f"{video_id.decode()}:{start}" for start in starts)
            pending_segments.append(segments)
            pending_lengths.append(lengths)
            if len(pending_ids) >= batch_segments:
                yield flush()
    if pending_ids:
        yield flush()


class SegmentRanking:
    """Per rated class, the `max_per_class` best-scored segments (a min-heap each).

    Args:
        num_classes: int, `N` of the scores.
        class_ids: the rated class ids (`segment_label_ids.csv`); only these are ranked.
        top_k: int, classes of each segment that enter the rankings (the starter code's 20).
        max_per_class: int, segments kept per class (Kaggle 2019: 100,000).
    """

    def __init__(self, num_classes, class_ids: Sequence[int], top_k=20, max_per_class=100_000):
        self.rated = np.zeros(num_classes, bool)
        self.rated[list(class_ids)] = True
        self.top_k = top_k
        self.max_per_class = max_per_class
        self.heaps = {int(c): [] for c in class_ids}

    def update(self, segment_ids: Sequence[str], scores: np.ndarray):
        masked = np.where(self.rated[None, :], scores, -np.inf)
        k = min(self.top_k, int(self.rated.sum()))
        top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
        for segment_id, row, classes in zip(segment_ids, masked, top):
            for cls in classes:
                heap = self.heaps[int(cls)]
                item = (float(row[cls]), segment_id)
                if len(heap) >= self.max_per_class:
                    heapq.heappushpop(heap, item)
                else:
                    heapq.heappush(heap, item)

    def rows(self):
        """`(class id, [segment ids by decreasing score])` for every rated class, by class id."""
        for cls in sorted(self.heaps):
            ranked = sorted(self.heaps[cls], key=lambda item: (-item[0], item[1]))
            yield cls, [segment_id for _, segment_id in ranked]

    def write_csv(self, path):
        """Writes `Class,Segments` atomically."""
        with atomic_write(path, "w") as f:
            f.write("Class,Segments\n")
            for cls, segment_ids in self.rows():
                f.write(f"{cls},{' '.join(segment_ids)}\n")
