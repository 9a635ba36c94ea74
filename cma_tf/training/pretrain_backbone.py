"""Pretraining the small backbone on the corpus of `data/pretrain_corpus.py` and writing its
weights with their provenance (docs/design.md §2.26; the command is `cma_tf/pretrain.py`).

The network is the benchmark's small CNN (`backbones/small.py`), global average pooling of its
last (stride-16) map and a softmax classifier over the corpus's classes, trained with
cross-entropy: ImageNet's set-up at the scale of the benchmark. Only the backbone's weights
are written; the classifier is discarded, as an ImageNet classifier is.
"""

import dataclasses
import datetime
import json
import os
import platform
import sys
import time
from typing import Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from cma_tf.atomic import atomic_path, write_text
from cma_tf.backbones.small import DEFAULT_WIDTHS, small_backbone
from cma_tf.backbones.weights import sha256_of
from cma_tf.datasets import pretrain_corpus
from cma_tf.errors import ConfigError

WEIGHTS_SUFFIX = ".weights.h5"  # what Keras' save_weights requires
PROVENANCE_SUFFIX = ".provenance.json"
# Not decayed, as in the usual ImageNet recipes: BatchNorm's scales and offsets and the biases.
NO_WEIGHT_DECAY = ("gamma", "beta", "bias")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How the backbone is pretrained (every field is recorded in the provenance).

    Args:
        epochs: int, passes over the training images.
        batch_size: int.
        learning_rate: float, AdamW's peak learning rate.
        weight_decay: float, AdamW's decoupled weight decay (not on `NO_WEIGHT_DECAY`).
        warmup_epochs: float, linear warm-up from 0 to `learning_rate`, then cosine decay to 0.
        seed: int, Keras' seed (initialisation, shuffling).
    """

    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    seed: int = 0


def provenance_path(weights_path: str) -> str:
    """`x.weights.h5` → `x.provenance.json`, beside it."""
    return weights_path[: -len(WEIGHTS_SUFFIX)] + PROVENANCE_SUFFIX


def classifier_over(backbone: keras.Model, num_classes: int) -> keras.Model:
    """backbone → its last map → global average pooling → a softmax over `num_classes`."""
    images = keras.Input(backbone.input_shape[1:], name="images")
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(backbone(images)[-1])
    probabilities = keras.layers.Dense(num_classes, activation="softmax", name="classifier")(pooled)
    return keras.Model(images, probabilities, name="pretraining_classifier")


def optimizer_for(recipe: Recipe, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """AdamW under a linear warm-up then a cosine decay to 0 over the whole run."""
    total = max(1, recipe.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(recipe.warmup_epochs * steps_per_epoch)))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate, decay_steps=total - warmup, alpha=0.0,
        warmup_target=recipe.learning_rate if warmup else None, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=recipe.weight_decay)
    optimizer.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    return optimizer


def pretrain(train_images: np.ndarray, train_labels: np.ndarray, heldout_images: np.ndarray,
             heldout_labels: np.ndarray, num_classes: int, recipe: Recipe,
             widths: Sequence[int] = DEFAULT_WIDTHS, progress: bool = True):
    """Trains `small_backbone` + a softmax classifier; returns (the backbone, figures: the
    per-epoch training loss and top-1, the held-out loss and top-1, the steps)."""
    keras.utils.set_random_seed(recipe.seed)
    image_size = int(train_images.shape[1])
    backbone = small_backbone(image_size=image_size, widths=tuple(widths))
    model = classifier_over(backbone, num_classes)
    steps_per_epoch = int(np.ceil(len(train_images) / recipe.batch_size))
    model.compile(optimizer=optimizer_for(recipe, steps_per_epoch),
                  loss="sparse_categorical_crossentropy", metrics=["sparse_categorical_accuracy"])
    history = model.fit(train_images, train_labels, batch_size=recipe.batch_size, epochs=recipe.epochs,
                        shuffle=True, verbose=1 if progress else 2)
    heldout_loss, heldout_top1 = model.evaluate(heldout_images, heldout_labels, batch_size=256, verbose=0)
    figures = {
        "heldout_top1": round(float(heldout_top1), 4),
        "heldout_loss": round(float(heldout_loss), 4),
        "chance_top1": round(1.0 / num_classes, 4),
        "train_loss_per_epoch": [round(float(v), 4) for v in history.history["loss"]],
        "train_top1_per_epoch": [round(float(v), 4) for v in history.history["sparse_categorical_accuracy"]],
        "steps": steps_per_epoch * recipe.epochs,
    }
    return backbone, figures


def write_weights(backbone: keras.Model, path: str) -> str:
    """Writes the backbone's weights to `path` (atomically); returns the file's sha256."""
    if not path.endswith(WEIGHTS_SUFFIX):
        raise ConfigError(f"--out={path}: a weights file must end in {WEIGHTS_SUFFIX} (Keras' save_weights)")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        keras_name = tmp + WEIGHTS_SUFFIX
        try:
            backbone.save_weights(keras_name)
            os.replace(keras_name, tmp)
        finally:
            if os.path.exists(keras_name):
                os.remove(keras_name)
    return sha256_of(path)


def machine() -> Dict:
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "niceness": os.nice(0),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def run_pretraining(out: str, num_train: int, num_heldout: int, corpus_seed: int, recipe: Recipe,
                    image_size: int = pretrain_corpus.DEFAULT_IMAGE_SIZE, widths: Sequence[int] = DEFAULT_WIDTHS,
                    command: Optional[str] = None, progress: bool = True) -> Dict:
    """Renders the corpus, pretrains, writes `out` (the backbone's weights) and its provenance
    (`provenance_path(out)`, written last); returns the provenance."""
    if not out.endswith(WEIGHTS_SUFFIX):
        raise ConfigError(f"--out={out}: a weights file must end in {WEIGHTS_SUFFIX} (Keras' save_weights)")
    if image_size % 16 or image_size < 16:
        raise ConfigError(f"--image_size={image_size}: the small backbone needs a multiple of 16")
    started = datetime.datetime.now(datetime.timezone.utc)
    began = time.perf_counter()
    train = pretrain_corpus.render_split(pretrain_corpus.TRAIN_SPLIT, num_train, corpus_seed, image_size, progress)
    heldout = pretrain_corpus.render_split(pretrain_corpus.HELDOUT_SPLIT, num_heldout, corpus_seed, image_size, progress)
    rendered = time.perf_counter()
    backbone, figures = pretrain(*train, *heldout, pretrain_corpus.NUM_CLASSES, recipe, widths, progress)
    trained = time.perf_counter()
    digest = write_weights(backbone, out)
    provenance = {
        "weights_file": os.path.basename(out),
        "sha256": digest,
        "bytes": os.path.getsize(out),
        "backbone": {"name": "small", "module": "cma_tf.backbones.small", "widths": [int(w) for w in widths],
                     "image_size": int(image_size), "parameters": int(backbone.count_params())},
        "corpus": pretrain_corpus.describe(num_train, num_heldout, corpus_seed, image_size),
        "recipe": {
            "network": "small backbone -> global average pooling of its stride-16 map -> Dense softmax",
            "loss": "sparse categorical cross-entropy (single label)",
            "optimizer": "adamw",
            "learning_rate": recipe.learning_rate,
            "weight_decay": recipe.weight_decay,
            "no_weight_decay_on": list(NO_WEIGHT_DECAY),
            "schedule": f"linear warm-up over {recipe.warmup_epochs} epoch(s), then cosine decay to 0",
            "epochs": recipe.epochs,
            "batch_size": recipe.batch_size,
            "seed": recipe.seed,
            "augmentation": "none: every training image is a distinct rendering",
        },
        "result": figures,
        "wall_time_seconds": {"render": round(rendered - began, 1), "train_and_evaluate": round(trained - rendered, 1),
                              "total": round(time.perf_counter() - began, 1)},
        "started_utc": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "command": command if command is not None else " ".join(["python"] + sys.argv),
    }
    write_text(provenance_path(out), json.dumps(provenance, indent=2) + "\n")
    return provenance
