"""Throughput of the training input pipeline at 448 against two references, in one run.

    python bench/input_pipeline.py [--num_images=512] [--repeats=3]

On the same JPEG files and cores it measures, in images per second:
  - bare decode: `TFRecordDataset` → parse → `tf.io.decode_jpeg`, parallel, batched (the
    ceiling for any pipeline that must decode every image);
  - cma_tf: `cma_tf.data.images.make_image_dataset(training=True)` at 448 (parse, decode,
    random crop, resize, flip, multi-hot, batch 64);
  - PIL, one process: the per-image loader of research repos (PIL open → RGB → random
    resized crop → 448 → flip, stacked into float32 batches), as a DataLoader with
    `num_workers=0` runs it;
  - PIL, a worker pool: the same loader in one process per core (`num_workers=cores`),
    workers returning uint8 arrays.
cma_tf decodes a JPEG only inside its random crop window (`decode_and_crop_jpeg`), so it can
beat the full-decode rate.
Prints a table, writes JSON (`--json_out`), and ends with one JSON line with
`ratio_to_decode` (cma_tf / bare decode), `ratio_to_pil` (cma_tf / PIL worker pool) and
`ratio_to_pil_single_process`.
"""

import argparse
import io
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from report import print_table, write_report  # noqa: E402
from cma_tf.data import images, records  # noqa: E402

NUM_CLASSES = 80
CROP_AREA = (0.3, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)


def synthetic_photo(rng, width, height):
    """A JPEG-friendly image: smooth gradients, a few ellipses, mild noise (not white noise,
    which would make JPEGs unrealistically large and slow to decode)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = [
        127 + 100 * np.sin(x / rng.uniform(20, 80) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(20, 80))
        for _ in range(3)
    ]
    pixels = np.stack(channels, -1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(10, 120)
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r**2
        pixels[mask] = rng.uniform(0, 255, 3)
    pixels += rng.normal(0, 6, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_files(directory, num_images, width, height, num_shards):
    """JPEG files (for the PIL loaders) and the same bytes in TFRecord shards."""
    rng = np.random.default_rng(0)
    paths, examples = [], []
    for index in range(num_images):
        buffer = io.BytesIO()
        Image.fromarray(synthetic_photo(rng, width, height)).save(buffer, format="JPEG", quality=90)
        path = os.path.join(directory, f"{index:05d}.jpg")
        with open(path, "wb") as f:
            f.write(buffer.getvalue())
        paths.append(path)
        labels = rng.choice(NUM_CLASSES, size=rng.integers(1, 4), replace=False)
        examples.append(records.encode_image_example(buffer.getvalue(), "jpeg", height, width, str(index), labels))
    shards = records.write_split(directory, "train", examples, num_shards)
    return paths, shards


def bare_decode_dataset(shards, batch_size):
    def decode(serialized):
        parsed = tf.io.parse_single_example(serialized, records.FEATURE_SPEC)
        return tf.io.decode_jpeg(parsed[records.ENCODED], channels=3)

    dataset = tf.data.TFRecordDataset(shards, num_parallel_reads=tf.data.AUTOTUNE)
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.ragged_batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pil_load(path, size=448, seed=None):
    """One image as research loaders do it (torchvision-style RandomResizedCrop + flip)."""
    rng = np.random.default_rng(seed)
    with Image.open(path) as image:
        image = image.convert("RGB")
        width, height = image.size
        for _ in range(10):
            area = width * height * rng.uniform(*CROP_AREA)
            aspect = np.exp(rng.uniform(np.log(CROP_ASPECT[0]), np.log(CROP_ASPECT[1])))
            w, h = int(round(np.sqrt(area * aspect))), int(round(np.sqrt(area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                left, top = rng.integers(0, width - w + 1), rng.integers(0, height - h + 1)
                break
        else:
            left, top, w, h = 0, 0, width, height
        image = image.resize((size, size), Image.BILINEAR, box=(left, top, left + w, top + h))
        if rng.random() < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(image)  # uint8: workers ship 1/4 of the bytes; batches become float32


def iterate_pil(paths, batch_size, pool=None):
    loaded = pool.imap(pil_load, paths, chunksize=8) if pool else map(pil_load, paths)
    batch = []
    for array in loaded:
        batch.append(array)
        if len(batch) == batch_size:
            yield np.stack(batch).astype(np.float32)
            batch = []
    if batch:
        yield np.stack(batch).astype(np.float32)


def images_per_second(make_iterator, count_of, repeats):
    """Median over `repeats` timed passes, after one untimed warm-up pass."""
    for _ in make_iterator():
        pass
    rates = []
    for _ in range(repeats):
        start, total = time.perf_counter(), 0
        for batch in make_iterator():
            total += count_of(batch)
        rates.append(total / (time.perf_counter() - start))
    return float(np.median(rates))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_images", type=int, default=512, help="JPEGs generated (default 512).")
    parser.add_argument("--width", type=int, default=640, help="Source image width (COCO-like, default 640).")
    parser.add_argument("--height", type=int, default=480, help="Source image height (default 480).")
    parser.add_argument("--image_size", type=int, default=448, help="Training input side (default 448).")
    parser.add_argument("--batch_size", type=int, default=64, help="Batch size (default 64).")
    parser.add_argument("--num_shards", type=int, default=8, help="TFRecord shards (default 8).")
    parser.add_argument("--repeats", type=int, default=3, help="Timed passes per loader; the median is kept.")
    parser.add_argument("--json_out", default="bench/results/input_pipeline.json", help="Where to write the JSON.")
    args = parser.parse_args()

    cores = os.cpu_count()
    with tempfile.TemporaryDirectory() as directory:
        print(f"generating {args.num_images} JPEGs {args.width}x{args.height} …", file=sys.stderr)
        paths, shards = make_files(directory, args.num_images, args.width, args.height, args.num_shards)
        count_tf = lambda batch: int(batch[0].shape[0]) if isinstance(batch, tuple) else int(batch.shape[0])  # noqa: E731
        rates = {
            "bare_decode": images_per_second(lambda: bare_decode_dataset(shards, args.batch_size), count_tf, args.repeats),
            "cma_tf": images_per_second(
                lambda: images.make_image_dataset(shards, NUM_CLASSES, args.image_size, args.batch_size, training=True, seed=0),
                count_tf, args.repeats,
            ),
            "pil_single_process": images_per_second(
                lambda: iterate_pil(paths, args.batch_size), lambda b: b.shape[0], args.repeats
            ),
        }
        with multiprocessing.get_context("fork").Pool(cores) as pool:
            rates["pil_worker_pool"] = images_per_second(
                lambda: iterate_pil(paths, args.batch_size, pool), lambda b: b.shape[0], args.repeats
            )

    result = {
        "images_per_s": rates,
        "ratio_to_decode": rates["cma_tf"] / rates["bare_decode"],
        "ratio_to_pil": rates["cma_tf"] / rates["pil_worker_pool"],
        "ratio_to_pil_single_process": rates["cma_tf"] / rates["pil_single_process"],
        "cores": cores,
        "num_images": args.num_images,
        "source_size": [args.width, args.height],
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "tensorflow": tf.__version__,
    }
    print(f"\nInput pipeline, {args.num_images} JPEGs {args.width}x{args.height}, {cores} cores, batch {args.batch_size}:\n")
    print_table(
        ["loader", "images/s", "× bare decode"],
        [[name, f"{rate:.1f}", f"{rate / rates['bare_decode']:.2f}"] for name, rate in rates.items()],
        "lrr",
    )
    print(f"\ncma_tf / bare decode = {result['ratio_to_decode']:.2f} (goal ≥ 0.80); "
          f"cma_tf / PIL worker pool = {result['ratio_to_pil']:.2f}, "
          f"/ PIL one process = {result['ratio_to_pil_single_process']:.2f} (goal ≥ 2)")
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
