"""Why the video benchmark starts every model at the label prior (docs/design.md §2.31).

    python bench/video_label_prior.py --work_dir=runs/bench_video_heads

On the `yt8m` preset's cached frames (`bench/video_heads.py` writes them under
`<work_dir>/cache`; this script reads them, and generates the data and the cache the same way
when they are missing), the validate GAP of:

- every video scored with the training split's label frequencies (the prior alone);
- a logistic regression on each video's mean frame (standardised on the training split), Adam
  1e-3, batch 64, from zero biases and from biases at the prior's log-odds, after epochs
  1, 2, 4 and 8: what a linear model can learn from these frames;
- plain-SNet under the benchmark's recipe at 1e-3 one-cycle, seed 0, `--epochs` epochs, with
  `config.model.label_prior` off and on, after each epoch.

The last line of stdout is one JSON object: `prior_GAP`, `linear_zero_bias`, `linear_prior_bias`
(GAP after epochs 1, 2, 4, 8), `plain_snet_without_prior`, `plain_snet_with_prior` (GAP after
each epoch).
"""

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import video_heads  # noqa: E402
from bench.report import print_table, write_report  # noqa: E402

LINEAR_EPOCHS = (1, 2, 4, 8)


def linear_probe(train_x, train_y, validate_x, validate_y, prior_bias):
    """GAP after each of `LINEAR_EPOCHS` of a logistic regression on the mean frame."""
    import keras

    from cma_tf.layers.label_prior import prior_log_odds
    from cma_tf.metrics.video import global_average_precision

    mean = lambda x: np.asarray(x, np.float32).mean(axis=1)  # noqa: E731
    a, b = mean(train_x), mean(validate_x)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    a, b = (a - mu) / sd, (b - mu) / sd
    bias = prior_log_odds(train_y.sum(0), len(train_y)) if prior_bias else np.zeros(train_y.shape[1], np.float32)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((a.shape[1],)),
                              keras.layers.Dense(train_y.shape[1], bias_initializer=keras.initializers.Constant(bias))])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.BinaryCrossentropy(from_logits=True))
    gaps = []
    for epoch in range(1, max(LINEAR_EPOCHS) + 1):
        model.fit(a, train_y.astype(np.float32), batch_size=64, epochs=1, verbose=0)
        if epoch in LINEAR_EPOCHS:
            gaps.append(global_average_precision(model.predict(b, batch_size=512, verbose=0), validate_y.astype(np.float32)))
    return gaps


def plain_snet(data_dir, train_set, validate_set, vocabulary, embeddings_dir, epochs, label_prior):
    """Validate GAP after each epoch of plain-SNet at 1e-3 one-cycle, seed 0."""
    from cma_tf.selection import grid
    from cma_tf.selection.feature_head import train_head_on_features

    config = grid.apply_point(video_heads.bench_config("plain_snet", data_dir, epochs),
                              {"learning_rate": 1e-3, "schedule": "onecycle"})
    config.model.label_prior = label_prior
    config.seed = 0
    result = train_head_on_features(config, *train_set, {"validate": validate_set}, vocabulary, embeddings_dir,
                                    epoch_metrics=["validate"], train_backbone=True, epoch_metric="GAP")
    return [row.get("validate_GAP") for row in result["history"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "runs", "bench_video_heads"),
                        help="bench/video_heads.py's work folder: its data/ and cache/ are read (made when missing)")
    parser.add_argument("--epochs", type=int, default=4, help="plain-SNet's epochs (the benchmark's seeds train 4)")
    parser.add_argument("--json_out", default=os.path.join(ROOT, "runs", "bench_video_label_prior.json"), help="where the figures are written")
    args = parser.parse_args()

    from cma_tf import factory
    from cma_tf.metrics.video import global_average_precision

    data_dir = os.path.join(args.work_dir, "data")
    video_heads.ensure_data(data_dir, video_heads.DEFAULT_DATA)
    config = video_heads.bench_config("plain_snet", data_dir)
    vocabulary = factory.read_vocabulary(config)
    train_set, validate_set, _ = video_heads.caches(config, os.path.join(args.work_dir, "cache"))
    (train_x,), train_y = train_set
    (validate_x,), validate_y = validate_set
    prior = np.tile(train_y.mean(0, dtype=np.float64), (len(validate_y), 1))
    out = {"prior_GAP": global_average_precision(prior, validate_y.astype(np.float32))}
    for name, prior_bias in (("linear_zero_bias", False), ("linear_prior_bias", True)):
        print(f"{name} …", file=sys.stderr, flush=True)
        out[name] = linear_probe(train_x, train_y, validate_x, validate_y, prior_bias)
    embeddings_dir = os.path.join(args.work_dir, "embeddings")
    for name, label_prior in (("plain_snet_without_prior", False), ("plain_snet_with_prior", True)):
        print(f"{name} …", file=sys.stderr, flush=True)
        out[name] = plain_snet(data_dir, train_set, validate_set, vocabulary, embeddings_dir, args.epochs, label_prior)

    pct = lambda values: ", ".join("–" if v is None else f"{100 * v:.1f}" for v in values)  # noqa: E731
    print(f"\n## Validate GAP (%) on the yt8m preset ({len(vocabulary):,} labels, {len(train_y):,} training videos)\n")
    print_table(["what", "epochs", "validate GAP"], [
        ["label frequencies as every video's score", "–", f"{100 * out['prior_GAP']:.2f}"],
        ["logistic regression on the mean frame, zero biases", ", ".join(map(str, LINEAR_EPOCHS)), pct(out["linear_zero_bias"])],
        ["the same, biases at the prior", ", ".join(map(str, LINEAR_EPOCHS)), pct(out["linear_prior_bias"])],
        ["plain-SNet, 1e-3 one-cycle, label_prior off", f"1-{args.epochs}", pct(out["plain_snet_without_prior"])],
        ["plain-SNet, 1e-3 one-cycle, label_prior on", f"1-{args.epochs}", pct(out["plain_snet_with_prior"])],
    ], "llr")
    write_report(out, args.json_out)


if __name__ == "__main__":
    main()
