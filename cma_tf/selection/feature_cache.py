"""The backbone's feature maps of a split, computed once and kept on disk.

With the backbone frozen, every head of a comparison (and every point of its search) reads the
same maps: computing them once per dataset and backbone makes a head's run cost what the head
costs, not the backbone. A split's cache is a folder

    <cache_dir>/<split>/map0.npy, map1.npy, …   float16 [n, H_i, W_i, C_i], the backbone's maps
                                                (shallow to deep), in the split's unshuffled order
    <cache_dir>/<split>/labels.npy              uint8 [n, N] multi-hot labels
    <cache_dir>/<split>/manifest.json           written last: what the cache was computed from

and is reused only while the manifest's key (the backbone's weights, the records' names, sizes
and modification times, the vocabulary and the image size) matches; otherwise it is computed
again. The maps are evaluated in inference mode (BatchNorm's moving statistics) without
augmentation, as a frozen backbone sees them, and stored as float16: half the disk and memory
of float32, at a relative error below 1e-3.
"""

import hashlib
import json
import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from cma_tf import factory
from cma_tf.atomic import atomic_write, write_text
from cma_tf.graph.cooccurrence import records_fingerprint

MANIFEST = "manifest.json"
LABELS = "labels.npy"
DTYPE = np.float16


def weights_digest(model):
    """sha256 of a model's weights (values and shapes, in order): what its outputs depend on."""
    digest = hashlib.sha256()
    for weight in model.weights:
        value = np.ascontiguousarray(weight.numpy())
        digest.update(str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def cache_key(config, backbone, split):
    """What the cached maps of `split` depend on (the manifest's `key`)."""
    vocabulary = factory.read_vocabulary(config)
    files = factory.list_data_files(config, split)
    key = {
        "backbone": config.model.backbone,
        "backbone_weights": weights_digest(backbone),
        "records": records_fingerprint(files, vocabulary),
        "image_size": int(config.data.image_size),
        "dtype": np.dtype(DTYPE).name,
    }
    kind = factory.data_kind(config)
    if not kind.reads_images:  # the cached inputs themselves (video): their shape and which features
        key.update(input_shape=[int(d) for d in kind.input_shape(config)], features=list(config.data.feature_names),
                   max_frames=int(config.data.max_frames))
    return key


def split_dir(cache_dir, split):
    return os.path.join(cache_dir, split)


def load(cache_dir, split, key=None):
    """`(maps, labels)` of a complete cache of `split` (maps: list of arrays, memory-mapped), or
    None when there is none or, given `key`, when it was computed from something else."""
    folder = split_dir(cache_dir, split)
    manifest_path = os.path.join(folder, MANIFEST)
    if not os.path.exists(manifest_path):
        return None
    with open(manifest_path) as f:
        manifest = json.load(f)
    if key is not None and manifest.get("key") != key:
        return None
    maps = [np.load(os.path.join(folder, f"map{i}.npy"), mmap_mode="r") for i in range(manifest["num_maps"])]
    labels = np.load(os.path.join(folder, LABELS))
    return maps, labels


def compute(config, backbone, split, progress=True):
    """`(maps, labels)` of `split`: the backbone's maps of every example in the split's
    unshuffled order (float16), and the multi-hot labels (uint8)."""
    num_classes = len(factory.read_vocabulary(config))
    dataset = factory.build_dataset(config, num_classes, split, training=False)
    forward = tf.function(lambda images: backbone(images, training=False))
    maps, labels = None, []
    with tqdm(desc=f"backbone maps of '{split}'", unit=" images", disable=not progress) as bar:
        for images, multi_hot in dataset:
            outputs = forward(images)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            if maps is None:
                maps = [[] for _ in outputs]
            for store, output in zip(maps, outputs):
                store.append(np.asarray(output).astype(DTYPE))
            labels.append(np.asarray(multi_hot).astype(np.uint8))
            bar.update(len(labels[-1]))
    if maps is None:
        raise ValueError(f"split '{split}' of {config.data.data_dir} holds no examples")
    return [np.concatenate(store) for store in maps], np.concatenate(labels)


def save(cache_dir, split, maps, labels, key):
    """Writes the cache of `split` (each file atomically, the manifest last)."""
    folder = split_dir(cache_dir, split)
    os.makedirs(folder, exist_ok=True)
    for i, array in enumerate(maps):
        with atomic_write(os.path.join(folder, f"map{i}.npy")) as f:
            np.save(f, array)
    with atomic_write(os.path.join(folder, LABELS)) as f:
        np.save(f, labels)
    manifest = {"key": key, "num_maps": len(maps), "num_examples": int(len(labels)),
                "shapes": [list(array.shape[1:]) for array in maps]}
    write_text(os.path.join(folder, MANIFEST), json.dumps(manifest, indent=2))


def load_or_compute(config, backbone, split, cache_dir, progress=True):
    """The cached maps of `split` for this backbone and data, computed and saved when missing
    or stale. Returns `(maps, labels)`."""
    key = cache_key(config, backbone, split)
    cached = load(cache_dir, split, key)
    if cached is not None:
        return cached
    maps, labels = compute(config, backbone, split, progress)
    save(cache_dir, split, maps, labels, key)
    return load(cache_dir, split, key)
