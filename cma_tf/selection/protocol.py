"""The whole protocol a head is judged by: a grid search on the held-out part, then seeds.

    1. The training split's examples are cut into the part trained on and the held-out part
       (`holdout.py`: 15 %, fixed by seed 0, the same for every head).
    2. `search.py` trains the head at every point of `grid.py` on the first part and keeps the
       point of the best held-out mAP.
    3. The chosen point is trained with `SEEDS` (the seed draws the initial weights and the order
       of the batches), and with `MORE_SEEDS` as well when the std of the first ones exceeds
       `MORE_SEEDS_ABOVE`: a wide spread needs more runs before a mean can be compared.
    4. A chosen point whose training diverges in most of its first seeds is unstable: one run
       of the search survived it by luck (HSVLT at 1e-2 on the COCO-statistics maps: held-out
       mAP 67.0, then all five seeds non-finite in epochs 2-5). It is recorded in `UNSTABLE`, its
       seed runs are moved to `unstable/<point>/`, and the next best point of the search is
       seeded instead. Divergence is read from the training loss alone, so the eval split still
       plays no part in the choice.

Where the seeds train and what they are scored on is the caller's: `bench/heads.py` trains them
on the whole training split and scores the eval split (which the search never read);
`cma_tf.select` trains them on the same part as the search and scores the held-out part, so
that the user's eval split is never read at all.

Every run's result is a JSON file written atomically under `directory` as it ends, so the same
call after a kill goes on where it stopped, and a finished protocol only reads its files.
"""

import json
import os

import numpy as np

from cma_tf.atomic import atomic_write, write_text
from cma_tf.selection import grid
from cma_tf.selection.feature_head import train_head_on_features
from cma_tf.selection.holdout import holdout_split
from cma_tf.selection.search import objective, point_name, search_head

SEEDS = (0, 1, 2)
MORE_SEEDS = (3, 4)
MORE_SEEDS_ABOVE = 0.01  # an mAP std over the first seeds above 1 point
RESULT = "result.json"
UNSTABLE = "unstable.json"  # the chosen points rejected because most of their first seeds diverged
SCORES = "scores.npy"  # the seed run's σ(logits) on what it was scored on (float16), for reports


def subset(data, indices):
    """`(maps, labels)` of the examples at `indices` of a cached split `(maps, labels)`."""
    maps, labels = data
    return [m[indices] for m in maps], labels[indices]


def split_for_search(train_set):
    """`(fit_set, holdout_set)`: the training split's cached maps cut by `holdout_split`."""
    fit, held = holdout_split(len(train_set[1]))
    return subset(train_set, fit), subset(train_set, held)


def seed_run(config, point, seed, train_set, eval_name, eval_set, vocabulary, path, embeddings_dir, metric="mAP",
             train_backbone=False, extra_sets=None, keep_scores=True):
    """One run of the chosen `point` with `seed` (read from `path` when it finished before):
    `{"seed", "point", "mAP", "score" (under `metric`), "metrics", "history" (with
    `<eval_name>_<metric>` after each epoch), "seconds"}`, or
    with `"diverged"`; its scores on `eval_set` are kept beside `path` (`SCORES`) unless not
    `keep_scores`. `extra_sets` (`{name: (maps, labels[, label_weights])}`, e.g. rated segments)
    are scored too, their metrics under `"extra"` (without the per-label APs). A run recorded at
    another point (the search chose anew, e.g. on a wider grid) is trained again, not reused."""
    if os.path.exists(path):
        with open(path) as f:
            record = json.load(f)
        if same_point(record.get("point"), point):
            return record
    run_config = grid.apply_point(config, point)
    run_config.seed = int(seed)
    result = train_head_on_features(run_config, *train_set, {eval_name: eval_set, **(extra_sets or {})}, vocabulary,
                                    embeddings_dir, epoch_metrics=[eval_name], train_backbone=train_backbone,
                                    return_scores=keep_scores, epoch_metric=metric)
    record = {"seed": int(seed), "point": point, "eval": eval_name, "metric": metric, "seconds": result["seconds"],
              "history": result["history"], "diverged": result.get("diverged")}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if "diverged" not in result:
        record["metrics"] = result["metrics"][eval_name]
        record["mAP"] = float(record["metrics"]["mAP"])
        record["score"] = float(record["metrics"][metric])
        if extra_sets:
            record["extra"] = {name: {k: v for k, v in result["metrics"][name].items() if k != "AP_per_class"}
                               for name in extra_sets}
        if keep_scores:
            with atomic_write(os.path.join(os.path.dirname(path), SCORES)) as f:
                np.save(f, result["scores"][eval_name].astype(np.float16))
    write_text(path, json.dumps(record, indent=1))
    return record


def same_point(a, b):
    """Whether two grid points (`{"learning_rate", "schedule"}`, e.g. one read back from JSON) are one."""
    return a is not None and b is not None and a["schedule"] == b["schedule"] \
        and float(a["learning_rate"]) == float(b["learning_rate"])


def score_of(run):
    """A seed run's score under its metric (runs recorded before `score` existed: their mAP)."""
    return run.get("score", run.get("mAP"))


def spread(runs):
    """Sample std (ddof 1) of the scores of the runs that did not diverge (None below two)."""
    values = [score_of(r) for r in runs if score_of(r) is not None]
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def judge_head(config, train_set, vocabulary, directory, embeddings_dir, final=None, seeds=SEEDS,
               more_seeds=MORE_SEEDS, progress=None, metric="mAP", train_backbone=False, extra_sets=None,
               keep_scores=True, search_epochs=None):
    """Runs (or resumes, or reads) the protocol of one head.

    Args:
        config: the head's config (`train.epochs`, batch size, loss; the grid sets the rest).
        train_set: the training split's `(maps, labels)`.
        vocabulary: the label names.
        directory: this head's folder: `search/<point>/result.json`, `seeds/seed<k>/result.json`.
        embeddings_dir: the label-embedding cache (one fit per set of training labels).
        final: `(train_set, eval_name, eval_set)` of the seed runs; None trains them on the part
            the search trained on and scores them on the held-out part.
        seeds, more_seeds: the seeds of the chosen point; `more_seeds` run only when the std over
            `seeds` exceeds `MORE_SEEDS_ABOVE`.
        progress: optional `callable(stage, result)` after each run trained here.
        metric: what the search chooses by and the seeds report as `score` (mAP; GAP for video).
        train_backbone: the cached maps are the inputs; the config's backbone trains (video).
        extra_sets, keep_scores: of the seed runs (`seed_run`).
        search_epochs: the search's runs this long (default `config.train.epochs`, as the seeds):
            a shorter search, where full-length runs of every point cost too much.

    Returns:
        `{"selected": point, "holdout_<metric>": its held-out score, "trials": [...], "runs": [...],
        "unstable": [the points rejected before it]}`.
    """
    fit_set, holdout_set = split_for_search(train_set)
    key = objective(metric)
    search_config = config
    if search_epochs:
        search_config = config.copy_and_resolve_references()
        search_config.train.epochs = int(search_epochs)
    search = search_head(search_config, fit_set, holdout_set, vocabulary, directory, "search", embeddings_dir,
                         progress=None if progress is None else lambda point, trial: progress("search", trial),
                         metric=metric, train_backbone=train_backbone)
    if final is None:
        final = (fit_set, "holdout", holdout_set)
    final_train, eval_name, eval_set = final

    def run(point, seed):
        path = os.path.join(directory, "seeds", f"seed{seed}", RESULT)
        fresh = not os.path.exists(path)
        result = seed_run(config, point, seed, final_train, eval_name, eval_set, vocabulary, path,
                          embeddings_dir, metric, train_backbone, extra_sets, keep_scores)
        if fresh and progress is not None:
            progress("seed", result)
        return result

    rejected = unstable_points(directory)
    while True:
        best = choose(search["trials"], key, rejected)
        if best is None:  # every point diverged in the search or was rejected: nothing to seed
            return {"selected": None, key: None, "trials": search["trials"], "runs": [], "unstable": rejected}
        runs = [run(best["point"], seed) for seed in seeds]
        if not mostly_diverged(runs):
            break
        rejected.append(reject(directory, best["point"], runs))
    std = spread(runs)
    if more_seeds and (std is None or std > MORE_SEEDS_ABOVE):
        runs += [run(best["point"], seed) for seed in more_seeds]
    return {"selected": best["point"], key: best[key], "trials": search["trials"], "runs": runs,
            "unstable": rejected}


def choose(trials, key, unstable=()):
    """The best trial by `key` among the points not rejected as `unstable` (`unstable_points`'
    entries); a diverged trial (score 0) only when nothing else is left, None when no point is
    left at all."""
    left = [t for t in trials if not any(same_point(t["point"], u["point"]) for u in unstable)]
    if not left:
        return None
    return max(left, key=lambda t: (not t.get("diverged"), t[key]))


def mostly_diverged(runs):
    """Whether more than half of the seed `runs` diverged (their point is unstable)."""
    return 2 * sum(bool(r.get("diverged")) for r in runs) > len(runs)


def unstable_points(directory):
    """The points rejected in `directory` as unstable: `[{"point", "seeds", "diverged"}]`."""
    path = os.path.join(directory, UNSTABLE)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def reject(directory, point, runs):
    """Records `point` as unstable, then moves its seed runs to `unstable/<point>/seeds` (the
    record first: a kill between the two leaves runs that are trained again, never counted)."""
    entry = {"point": point, "seeds": [r["seed"] for r in runs],
             "diverged": [r.get("diverged") for r in runs]}
    write_text(os.path.join(directory, UNSTABLE), json.dumps(unstable_points(directory) + [entry], indent=1))
    target = os.path.join(directory, "unstable", point_name(point), "seeds")
    if os.path.isdir(os.path.join(directory, "seeds")) and not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(os.path.join(directory, "seeds"), target)
    return entry
