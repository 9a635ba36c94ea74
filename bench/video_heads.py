"""Every video model on YouTube-8M-scale synthetic data, the same tuning budget for each, with error bars.

    python bench/video_heads.py                          # every model, seeds 0-2 (days on 2 cores; resumes)
    python bench/video_heads.py --quick                  # smoke run: 2 models, tiny data, 1 epoch, 1 seed
    python bench/video_heads.py --heads=plain_snet,cma_snet,nextvlad --seeds=0,1,2
    python bench/video_heads.py --no_train               # the table of the runs finished or recorded so far
    python bench/video_heads.py --cost_only              # parameters, step times, peak memory (alone on the machine)

What is compared: the entries of `configs/bench_video_heads.py` (plain-SNet; self-attention over
FC and over SNet; CMA over FC and over SNet; ML-Decoder over SNet; the starter's DBoF with its
MoE; NetVLAD with context gating and MoE; NeXtVLAD with SE gating), one recipe (Adam, batch 64,
rgb and audio, 32 frames a video, 4 epochs), on the `yt8m` preset of
`python -m cma_tf.datasets.yt8m_synthetic` (3,862 labels with Zipf popularity, 1-5 labels a video,
evidence in a few short runs, look-alike labels told apart only by context or by how long they
show; its module docstring says what it rewards).

The protocol is the image benchmark's (`cma_tf/selection/`, docs/design.md §2.28): every model
gets the same grid (5 learning rates, 1e-4 to 1e-2, × 2 schedules), trained on the training split minus a
held-out 15 % (fixed by a seed, the same for every model) and chosen by its GAP on that part;
the chosen point then trains on the whole training split with seeds 0-2 (and 3-4 where the
GAP's std exceeds a point) and is scored on the validate split, which the choice never read:
GAP, mAP and Hit@1 of whole videos, and the MAP of the rated segments (each model scoring the
segment's 5 frames; only rated classes count, as the starter's `eval.py`). The frames of each
split are decoded once into a cache (`feature_cache.py`, the same resampled `T` frames every
epoch: no frame-sampling augmentation, alike for all).

Bounded for 2 cores, and why: the models at the demo's widths (SNet/FC 128, NetVLAD/NeXtVLAD 16
clusters, ML-Decoder's decoder 128 wide; the official sizes hold up to 285 M weights), 32 frames
(DBoF's official 30; NetVLAD's and NeXtVLAD's 300), 4 epochs for the seeds and 2 for the search
runs (`--search_epochs`: the choice is made on a shorter schedule, as the issue of the image
benchmark allowed), 12,000 training videos (`--train_videos`). A model's protocol is 10 search
runs and 3-5 seeds; each run's result is written as it ends, under `--record_dir` (committed),
so the benchmark is carried across machines like `bench/heads.py`.

Also per model, once: parameters (all weights, the label prior's 3,862 fixed offsets included),
the train-step time relative to plain-SNet (median of timed steps on one cached batch of 64),
and the peak memory (RSS) of a train step at the paper's batch 256 (`bench/memory.py`'s worker,
a fresh process per model), measured after the runs or alone with `--cost_only`, and recorded
in `costs.json` beside the runs' results with the time, cores and load they were measured at.

The last line of stdout is one JSON object keyed by model: `GAP`, `GAP_std`, `mAP`, `mAP_std`,
`hit_at_1`, `hit_at_1_std`, `segment_mAP`, `segment_mAP_std`, `seeds`, `selected`,
`diverged`, `degenerate` (seeds whose GAP or Hit@1 is 0: constant scores), `converged` (every
seed's validate GAP at its last epoch less than 0.5 pt above its best before; logged after each
epoch), `params`, `step_ratio`, `peak_rss_mb`.
"""

import argparse
import glob
import hashlib
import json
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import run_records  # noqa: E402
from bench.report import mean_std, print_table, run_worker, stopped_rising, write_report  # noqa: E402
from cma_tf.atomic import atomic_write, write_json, write_text  # noqa: E402

CONFIG = os.path.join(ROOT, "configs", "bench_video_heads.py")
DEFAULT_DATA = dict(num_classes=3862, train_videos=12_000, validate_videos=3_000, min_frames=60, max_frames=180, seed=0)
SEARCH_EPOCHS = 2
DATA_STAMP = "bench_data.json"
SEGMENTS = "validate_segments"
CONVERGED_EPOCHS, CONVERGED_TOLERANCE = 1, 0.005  # the last epoch's validate GAP < 0.5 pt above the best before
# --quick: 64 labels (at 3,862 a few steps leave every model at its initial, constant scores: GAP 0)
QUICK = dict(heads="plain_snet,netvlad", seeds="0", more_seeds="", epochs=2, search_epochs=1, num_classes=64,
             train_videos=320, validate_videos=80, min_frames=20, max_frames=40)


def bench_config(entry, data_dir, epochs=None):
    from cma_tf.config_base import load_config_file

    config = load_config_file(CONFIG).get_config(entry)
    config.data.data_dir = os.path.join(data_dir, "frame")
    if epochs:
        config.train.epochs = epochs
    return config


def ensure_data(data_dir, wanted):
    """The `yt8m` preset in `data_dir` with the `wanted` sizes, generated when missing or other."""
    from cma_tf.datasets import yt8m_synthetic as synthetic

    stamp = os.path.join(data_dir, DATA_STAMP)
    if os.path.exists(stamp):
        with open(stamp) as f:
            if json.load(f) == wanted:
                return
        os.remove(stamp)  # a generation killed midway must not leave a stamp that matches
    print(f"generating the yt8m preset in {data_dir} ({wanted}) …", file=sys.stderr)
    summary = synthetic.write_synthetic_yt8m(data_dir, preset="yt8m", test_videos=0, progress=True, **wanted)
    train = summary["splits"]["train"]
    print(f"  {train['videos']} training videos, {train['mean_labels_per_video']} labels a video, "
          f"{sum(c > 0 for c in train['class_counts'])} of {summary['num_classes']} labels seen in training",
          file=sys.stderr)
    write_text(stamp, json.dumps(wanted))


def data_digest(data_dir):
    """sha256 of the vocabulary (every label's training count) and of the first training shard:
    what changes when the generator does, not when the same data is generated again."""
    digest = hashlib.sha256()
    for path in (os.path.join(data_dir, "vocabulary.csv"), sorted(glob.glob(os.path.join(data_dir, "frame", "train*")))[0]):
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def segment_set(config, cache_dir):
    """`([frames], labels, label_weights)` of the validate split's rated segments, cached (each
    array written atomically, then a manifest of what they were read from: the records, the
    input shape and features, as `feature_cache` keys its splits; another manifest recomputes)."""
    from cma_tf import factory
    from cma_tf.selection.feature_cache import cache_key
    from cma_tf.selection.feature_head import InputFeatures

    folder = os.path.join(cache_dir, SEGMENTS)
    names = ("frames", "labels", "weights")
    config = config.copy_and_resolve_references()
    config.data.eval_segments = True
    key = json.loads(json.dumps(cache_key(config, InputFeatures(), config.data.eval_split), default=str))
    manifest = os.path.join(folder, "manifest.json")
    if os.path.exists(manifest):
        with open(manifest) as f:
            if json.load(f) == key:
                frames, labels, weights = (np.load(os.path.join(folder, f"{name}.npy")) for name in names)
                return [frames], labels, weights
        os.remove(manifest)
    num_classes = len(factory.read_vocabulary(config))
    arrays = ([], [], [])
    for batch in factory.build_dataset(config, num_classes, config.data.eval_split, training=False):
        for store, value, dtype in zip(arrays, batch, (np.float16, np.uint8, np.uint8)):
            store.append(np.asarray(value).astype(dtype))
    os.makedirs(folder, exist_ok=True)
    for name, store in zip(names, arrays):
        with atomic_write(os.path.join(folder, f"{name}.npy")) as f:
            np.save(f, np.concatenate(store))
    write_text(manifest, json.dumps(key))
    return segment_set(config, cache_dir)


def caches(config, cache_dir):
    """The training and validate splits' decoded frames, and the rated segments."""
    from cma_tf.selection import feature_cache
    from cma_tf.selection.feature_head import InputFeatures

    whole = config.copy_and_resolve_references()
    whole.data.eval_segments = False
    train = feature_cache.load_or_compute(whole, InputFeatures(), whole.data.train_split, cache_dir)
    validate = feature_cache.load_or_compute(whole, InputFeatures(), whole.data.eval_split, cache_dir)
    return train, validate, segment_set(config, cache_dir)


RECIPE = "recipe.json"


def recipe_of(config, wanted, search_epochs, digest):
    """What a model's results depend on: its config (paths left out), the data's sizes and
    digest, the search's length, the grid and the held-out part."""
    from cma_tf.selection import grid, holdout

    config = config.copy_and_resolve_references()
    config.data.data_dir = ""  # where the data lies on this machine is not what it is
    return {"config": json.loads(json.dumps(config.to_dict(), default=str)), "data": wanted, "data_digest": digest,
            "search_epochs": search_epochs, "grid": grid.points(),
            "holdout": {"fraction": holdout.DEFAULT_FRACTION, "seed": holdout.DEFAULT_SEED}}


def recipe_folder(base, wanted, epochs, search_epochs):
    """`base/<10 hex digits>`: one folder of results per data size and length (non-default runs)."""
    text = json.dumps({"data": wanted, "epochs": epochs, "search_epochs": search_epochs}, sort_keys=True)
    return os.path.join(base, hashlib.sha256(text.encode()).hexdigest()[:10])


def check_recipe(directory, recipe, write):
    """None when `directory`'s results are of `recipe` (its `recipe.json`, written with the code's
    commit when `write` and missing), else why not: results of another recipe are never mixed in."""
    path = os.path.join(directory, RECIPE)
    if not os.path.exists(path):
        if write:
            os.makedirs(directory, exist_ok=True)
            write_text(path, json.dumps({"recipe": recipe, "code": run_records.provenance()}, indent=1))
        return None
    with open(path) as f:
        saved = json.load(f)["recipe"]
    if recipe.get("data_digest") is None:  # --no_train without the data: its digest is unknown here
        saved = dict(saved, data_digest=None)
    if saved == recipe:
        return None
    keys = sorted(k for k in set(saved) | set(recipe) if saved.get(k) != recipe.get(k))
    if "config" in keys:
        keys += [f"config.{name}" for name in sorted(differing_fields(saved.get("config", {}), recipe.get("config", {})))]
    return (f"{directory} holds results of another recipe (differs in {', '.join(keys)}): remove it to train "
            "again, or give another --work_dir / --record_dir=''")


def differing_fields(a, b, prefix=""):
    """The dotted names of the fields where the nested dicts `a` and `b` differ."""
    names = []
    for key in set(a) | set(b):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            names += differing_fields(x, y, f"{prefix}{key}.")
        elif x != y:
            names.append(f"{prefix}{key}")
    return names


def recorded(directory):
    """A model's protocol as far as its files go (`--no_train`): None until its whole search and
    at least one seed have finished; every finished seed is read."""
    from cma_tf.selection import grid, protocol, search

    trials = []
    for point in grid.points():
        path = os.path.join(directory, "search", search.point_name(point), protocol.RESULT)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            trials.append(json.load(f))
    runs = []
    for path in sorted(glob.glob(os.path.join(directory, "seeds", "seed*", protocol.RESULT))):
        with open(path) as f:
            runs.append(json.load(f))
    if not runs:
        return None
    unstable = protocol.unstable_points(directory)
    best = protocol.choose(trials, "holdout_GAP", unstable)
    if best is None:
        return None
    return {"selected": best["point"], "holdout_GAP": best["holdout_GAP"], "trials": trials, "runs": runs,
            "unstable": unstable}


def converged(history, key="validate_GAP"):
    """Whether the validate GAP stopped rising: the last epoch's is less than `CONVERGED_TOLERANCE`
    above the best before it, as `bench/heads.py` reads the mAP (None without the epochs to tell:
    runs recorded before the GAP was logged per epoch). The GAP, not the mAP: over 3,862 mostly
    rare labels the mAP moves by less than the tolerance while the GAP still gains points an epoch."""
    values = [h[key] for h in history if key in h]
    if len(values) <= CONVERGED_EPOCHS:
        return None
    return stopped_rising(values, CONVERGED_EPOCHS, CONVERGED_TOLERANCE)


def all_converged(flags):
    """True when every seed converged, False when one did not, None when that is not known."""
    if any(flag is False for flag in flags):
        return False
    return None if not flags or any(flag is None for flag in flags) else True


def summarize(judged):
    """One row of figures per model from its protocol's result."""
    runs = [r for r in judged["runs"] if not r.get("diverged")]
    figures = {
        "GAP": [r["metrics"]["GAP"] for r in runs],
        "mAP": [r["metrics"]["mAP"] for r in runs],
        "hit_at_1": [r["metrics"]["Hit@1"] for r in runs],
        "segment_mAP": [r.get("extra", {}).get("segments", {}).get("mAP") for r in runs],
    }
    row = {"seeds": [r["seed"] for r in runs], "selected": judged["selected"],
           "degenerate": sum(1 for r in runs if r["metrics"]["GAP"] == 0.0 or r["metrics"]["Hit@1"] == 0.0),
           "diverged": sum(1 for r in judged["runs"] if r.get("diverged")),
           "converged": all_converged([converged(r["history"]) for r in runs]),
           "holdout_GAP": judged.get("holdout_GAP")}
    for key, values in figures.items():
        row[key], row[f"{key}_std"] = mean_std(values)
    return row


def cost(entries, data_dir, train_set, vocabulary, embeddings_dir, memory_batch, steps):
    """Per model: parameters, median step seconds on a cached batch, peak RSS at `memory_batch`."""
    import keras

    from cma_tf.selection.feature_head import compiled_model, step_seconds

    out = {}
    for entry in entries:
        config = bench_config(entry, data_dir)
        model = compiled_model(config, *train_set, vocabulary, embeddings_dir, train_backbone=True)
        params = int(model.count_params())
        keras.backend.clear_session()
        seconds = step_seconds(config, *train_set, vocabulary, embeddings_dir, train_backbone=True, steps=steps)
        memory, code = run_worker(os.path.join(ROOT, "bench", "memory.py"), [
            "--setting=bench_video", f"--head={entry}", "--path=fused", f"--batch={memory_batch}", "--steps=1",
            f"--num_labels={len(vocabulary)}"])
        out[entry] = {"params": params, "step_s": seconds,
                      "peak_rss_mb": memory["peak_rss_mb"] if memory else None,
                      "memory_failed": None if memory else ("killed (out of memory?)" if code < 0 else f"exit {code}")}
    reference = out.get("plain_snet", {}).get("step_s")
    for figures in out.values():
        figures["step_ratio"] = figures["step_s"] / reference if reference else None
    return out


COSTS = "costs.json"


def record_costs(results_dir, costs, args):
    """Adds this run's costs to `results_dir/costs.json`, each model's with the circumstances it
    was measured in: a later `--no_train` prints them, and a model measured again replaces its
    entry. Each step ratio is against plain-SNet timed in the same run, so entries of separate
    runs can sit side by side."""
    path = os.path.join(results_dir, COSTS)
    saved = read_costs(results_dir)
    when = dict(measured=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), cores=os.cpu_count(),
                load_average_1min=round(os.getloadavg()[0], 2), memory_batch=args.memory_batch,
                step_rounds=args.step_rounds)
    saved.update({head: dict(figures, **when) for head, figures in costs.items()})
    write_json(path, saved)


def read_costs(results_dir):
    """The recorded costs per model ({} where none were measured)."""
    path = os.path.join(results_dir, COSTS) if results_dir else ""
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def cell(mean, std, scale=100.0):
    if mean is None:
        return "–"
    return f"{scale * mean:.1f} ± {scale * std:.1f}" if std is not None else f"{scale * mean:.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--heads", default=None, help="Comma-separated entries of configs/bench_video_heads.py "
                        "(default all nine).")
    parser.add_argument("--seeds", default="0,1,2", help="Seeds of the chosen point (default 0,1,2).")
    parser.add_argument("--more_seeds", default="3,4", help="Seeds also run where the GAP std over --seeds exceeds "
                        "one point (default 3,4; '' never).")
    parser.add_argument("--epochs", type=int, default=None, help="Epochs of every run (default the config's, 4).")
    parser.add_argument("--num_classes", type=int, default=3862, help="Labels of the yt8m preset (default 3,862, "
                        "YouTube-8M's).")
    parser.add_argument("--search_epochs", type=int, default=SEARCH_EPOCHS,
                        help="Epochs of each search run (default 2, half the seeds' 4: the grid's 8 runs per model at "
                             "full length cost more than 2 cores give).")
    parser.add_argument("--train_videos", type=int, default=12_000, help="Training videos of the yt8m preset "
                        "(default 12,000, the preset's).")
    parser.add_argument("--validate_videos", type=int, default=3_000, help="Validate videos (default 3,000).")
    parser.add_argument("--min_frames", type=int, default=60, help="Fewest frames a video (default 60).")
    parser.add_argument("--max_frames", type=int, default=180, help="Most frames a video (default 180).")
    parser.add_argument("--data_seed", type=int, default=0, help="Seed of the generated data (default 0).")
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "runs", "bench_video_heads"),
                        help="Data, caches and label embeddings (default runs/bench_video_heads; reused).")
    parser.add_argument("--record_dir", default=os.path.join(ROOT, "bench", "records", "video_heads"),
                        help="Where each model's search and seed results are written as they end (default "
                             "bench/records/video_heads, committed, so that another machine goes on where this one "
                             "stopped; only for the default data and epochs, else under --work_dir). '' turns it off.")
    parser.add_argument("--memory_batch", type=int, default=256,
                        help="Batch of the peak-memory step (the paper's 256).")
    parser.add_argument("--step_rounds", type=int, default=5, help="Timed train steps per model (default 5).")
    parser.add_argument("--no_cost", action="store_true", help="Skip parameters, step times and peak memory.")
    parser.add_argument("--no_train", action="store_true", help="Only print the table of what finished, with the "
                        "costs recorded by an earlier run (no training, no data generated).")
    parser.add_argument("--cost_only", action="store_true", help="Measure every model's parameters, step time and "
                        "peak memory and record them (costs.json beside the runs' results), without training: the "
                        "costs do not depend on the runs, so they can be measured alone on the machine at any time.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: plain_snet and netvlad, 64 labels, 320 "
                        "training videos of 20-40 frames, 2 epochs, seed 0, in --work_dir/quick (same JSON keys).")
    parser.add_argument("--json_out", default=None, help="Where to write the JSON (default "
                        "bench/results/video_heads.json).")
    args = parser.parse_args()
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        args.work_dir, args.record_dir, args.memory_batch = os.path.join(args.work_dir, "quick"), "", 8
    args.json_out = args.json_out or os.path.join(ROOT, "bench", "results", "video_heads_quick.json" if args.quick
                                                  else "video_heads.json")

    from cma_tf.config_base import load_config_file
    from cma_tf.selection import protocol

    entries = list(load_config_file(CONFIG).ENTRIES)
    heads = args.heads.split(",") if args.heads else entries
    unknown = sorted(set(heads) - set(entries))
    if unknown:
        parser.error(f"--heads: unknown {', '.join(unknown)} (the entries: {', '.join(entries)})")
    wanted = dict(num_classes=args.num_classes, train_videos=args.train_videos, validate_videos=args.validate_videos,
                  min_frames=args.min_frames, max_frames=args.max_frames, seed=args.data_seed)
    recorded_recipe = wanted == DEFAULT_DATA and not args.epochs and args.search_epochs == SEARCH_EPOCHS
    if args.record_dir and recorded_recipe:
        results_dir = args.record_dir
    else:
        results_dir = recipe_folder(os.path.join(args.work_dir, "runs"), wanted, args.epochs, args.search_epochs)
    data_dir = os.path.join(args.work_dir, "data")
    seeds = [int(s) for s in args.seeds.split(",")]
    more_seeds = [int(s) for s in args.more_seeds.split(",") if s]
    wall = time.perf_counter()
    if args.no_train and args.cost_only:
        parser.error("--cost_only measures on the data: it cannot go with --no_train")
    train = not (args.no_train or args.cost_only)
    if args.no_train:  # read-only: no data generated, nothing decoded
        digest, num_labels = None, args.num_classes
    else:
        from cma_tf import factory

        ensure_data(data_dir, wanted)
        digest = data_digest(data_dir)
        reference_config = bench_config("plain_snet", data_dir, args.epochs)
        vocabulary = factory.read_vocabulary(reference_config)
        num_labels = len(vocabulary)
        train_set, validate_set, segments = caches(reference_config, os.path.join(args.work_dir, "cache"))
        embeddings_dir = os.path.join(args.work_dir, "embeddings")
    problems = [problem for head in heads
                for problem in [check_recipe(os.path.join(results_dir, head),
                                             recipe_of(bench_config(head, data_dir, args.epochs), wanted,
                                                       args.search_epochs, digest), write=train)]
                if problem]
    if problems:
        parser.exit(2, "error: " + "\nerror: ".join(problems) + "\n")

    rows = {}
    for head in heads:
        directory = os.path.join(results_dir, head)
        config = bench_config(head, data_dir, args.epochs)

        def progress(stage, result, head=head):
            what = result.get("point") if stage == "search" else f"seed {result.get('seed')}"
            score = result.get("holdout_GAP", result.get("score"))
            print(f"  {head} {stage} {what}: GAP {score if score is None else round(100 * score, 1)} "
                  f"({result.get('seconds', 0):.0f} s)", file=sys.stderr, flush=True)

        if not train:
            judged = recorded(directory)
            rows[head] = summarize(judged) if judged else {"pending": True}
            continue
        print(f"{head}: search and seeds in {directory} …", file=sys.stderr, flush=True)
        judged = protocol.judge_head(config, train_set, vocabulary, directory, embeddings_dir,
                                     final=(train_set, "validate", validate_set), seeds=seeds,
                                     more_seeds=more_seeds, progress=progress, metric="GAP", train_backbone=True,
                                     extra_sets={"segments": segments}, keep_scores=False,
                                     search_epochs=args.search_epochs)
        rows[head] = summarize(judged)

    if args.no_cost:
        costs = {}
    elif args.no_train:
        costs = read_costs(results_dir)
    else:
        costs = cost(["plain_snet"] + [h for h in heads if h != "plain_snet"], data_dir, train_set, vocabulary,
                     embeddings_dir, args.memory_batch, args.step_rounds)  # plain-SNet timed too: step_ratio's reference
        if results_dir:
            record_costs(results_dir, costs, args)
    print(f"\n## Video models on the yt8m preset ({num_labels:,} labels, {args.train_videos:,} training videos), "
          f"seeds {args.seeds}; a difference inside the stds is a tie\n")
    table = []
    for head in heads:
        row, figures = rows[head], costs.get(head, {})
        cost_cells = [f"{figures['params']:,}" if figures else "–",
                      f"{figures['step_ratio']:.2f}" if figures.get("step_ratio") else "–"]
        if row.get("pending"):
            table.append([head] + ["pending"] + ["–"] * 6 + cost_cells)
            continue
        point = row["selected"]
        table.append([
            head, cell(row["GAP"], row["GAP_std"]), cell(row["mAP"], row["mAP_std"]),
            cell(row["hit_at_1"], row["hit_at_1_std"]), cell(row["segment_mAP"], row["segment_mAP_std"]),
            f"{len(row['seeds'])}" + (f" ({row['diverged']} diverged)" if row["diverged"] else "")
            + (f" ({row['degenerate']} degenerate: GAP or Hit@1 0)" if row["degenerate"] else ""),
            f"{point['learning_rate']:g} {point['schedule']}",
            {True: "yes", False: "no", None: "–"}[row["converged"]],
        ] + cost_cells)
    print_table(["model", "GAP", "mAP", "Hit@1", "segment MAP", "seeds", "selected (lr, schedule)", "converged",
                 "params", "step / plain-SNet"], table, "lrrrrrlrrr")
    measured = [h for h in heads if h in costs]
    if measured:
        batches = sorted({costs[h].get("memory_batch", args.memory_batch) for h in measured})
        print(f"\nPeak RSS of one train step at batch {', '.join(map(str, batches))} (fresh process each; "
              "TensorFlow's own ~0.7 GB included), and when the costs were measured:")
        print_table(["model", "peak RSS MB", "measured (1-min load average, cores)"], [
            [h, f"{costs[h]['peak_rss_mb']:,.0f}" if costs[h]["peak_rss_mb"] else costs[h]["memory_failed"],
             f"{costs[h]['measured']} ({costs[h]['load_average_1min']}, {costs[h]['cores']})"
             if "measured" in costs[h] else "this run"] for h in measured], "lrl")
    out = {}
    empty = dict.fromkeys(("GAP", "GAP_std", "mAP", "mAP_std", "hit_at_1", "hit_at_1_std", "segment_mAP",
                           "segment_mAP_std", "seeds", "selected", "converged", "diverged", "degenerate", "params",
                           "step_ratio", "peak_rss_mb"))
    for head in heads:
        row = dict(empty, **{k: v for k, v in rows[head].items() if k != "holdout_GAP"})
        row.update({k: costs[head].get(k) for k in ("params", "step_ratio", "peak_rss_mb")} if head in costs else {})
        out[head] = row
    details = dict(heads=out, costs=costs, wall_s=time.perf_counter() - wall, data=wanted, cores=os.cpu_count(),
                   epochs=args.epochs or bench_config("plain_snet", data_dir).train.epochs,
                   search_epochs=args.search_epochs, results_dir=results_dir)
    os.makedirs(os.path.dirname(args.json_out), exist_ok=True)
    with open(args.json_out, "w") as f:
        json.dump(details, f, indent=2)
    write_report(out, os.path.splitext(args.json_out)[0] + "_summary.json")


if __name__ == "__main__":
    main()
