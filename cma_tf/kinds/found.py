"""What kind of data a folder holds, for the message when a config of another kind is pointed
at it (an image config at YouTube-8M records): read from the folder's file names and its first
record, never from the config."""

import os
from typing import Optional, Tuple

import tensorflow as tf

from cma_tf.data.yt8m import validate as yt8m_validate
from cma_tf.data.yt8m.vocabulary import VOCABULARY_FILENAME, first_existing, published_locations

# The YouTube-8M configs, by record kind: how to train on such records.
YOUTUBE8M_FIXES = {
    yt8m_validate.FRAME_LEVEL: (
        "train on it with a YouTube-8M config, e.g. --config=configs/yt8m.py:cma_snet "
        "(--config.data.format=yt8m_frame)"
    ),
    yt8m_validate.VIDEO_LEVEL: (
        "train on it with a video-level YouTube-8M config, e.g. --config=configs/yt8m.py:cma_fc_video "
        "(--config.data.format=yt8m_video)"
    ),
}
FOLDERS = {yt8m_validate.FRAME_LEVEL: "frame", yt8m_validate.VIDEO_LEVEL: "video"}


def _record_kind(folder, split) -> Tuple[Optional[str], Optional[str]]:
    """`(kind, file name)` of the first `*.tfrecord` in `folder` (those of `split` first), or
    `(None, None)`."""
    files = sorted(tf.io.gfile.glob(os.path.join(folder, "*.tfrecord"))) if tf.io.gfile.isdir(folder) else []
    files.sort(key=lambda path: not os.path.basename(path).startswith(split))
    for path, _, raw in yt8m_validate.first_records(files, 1):
        return yt8m_validate.summarize(raw).kind, os.path.basename(path)
    return None, None


def youtube8m_data(data_dir, split="train") -> Optional[Tuple[str, str]]:
    """`(what the folder holds, how to train on it)` when `data_dir` holds YouTube-8M records
    (frame- or video-level; a file of `split` named) or is the published folder above them
    (`vocabulary.csv`, `frame/`, `video/`); None otherwise."""
    if not data_dir or not tf.io.gfile.isdir(data_dir):
        return None
    kind, name = _record_kind(data_dir, split)
    vocabulary = first_existing(published_locations(data_dir, VOCABULARY_FILENAME))
    if kind in YOUTUBE8M_FIXES:
        beside = f" and its {VOCABULARY_FILENAME}" if vocabulary else ""
        return f"YouTube-8M {kind} records ({name}){beside}", YOUTUBE8M_FIXES[kind]
    folders = [f"{folder}/" for record_kind, folder in FOLDERS.items()
               if _record_kind(os.path.join(data_dir, folder), split)[0] == record_kind]
    if not folders:
        return None
    held = f"{VOCABULARY_FILENAME}; records in {', '.join(folders)}" if vocabulary else f"records in {', '.join(folders)}"
    fix = (
        "point config.data.data_dir at its frame/ (--config.data.format=yt8m_frame) or video/ "
        "(--config.data.format=yt8m_video) folder, with a YouTube-8M config (configs/yt8m.py)"
    )
    return f"YouTube-8M data ({held})", fix
