"""One head's grid search on cached maps, selected on the held-out part, resumable.

Each point of `grid.points()` trains the head on the training split minus the held-out part
(`holdout.py`) and scores it on the held-out part alone (`holdout_mAP`); the eval split is not
read. Its result is written (atomically) to `<directory>/<name>/<point>/result.json` as it ends,
so the same call after a kill goes on with the points not yet finished (a point killed midway is
trained again) and a finished search only reads its records.

Why not Keras Tuner: its `GridSearchOracle` (keras-tuner 1.4.8) does not resume a search killed
during a trial: the reloaded oracle looks up the killed trial in an ordering it did not save and
raises `KeyError` (`gridsearch.py`, `populate_space`); measured by
`tests/selection/test_search.py::test_a_killed_search_resumes_and_finishes_every_point_once`
before this loop replaced it (docs/design.md §2.27). A grid needs no more than this loop.

A point whose loss or scores became non-finite scores 0 and says so in its `result.json`: a
diverged point is a result of the search, not an error of it.
"""

import json
import os

from cma_tf.atomic import write_text
from cma_tf.selection import grid
from cma_tf.selection.feature_head import train_head_on_features

OBJECTIVE = "holdout_mAP"  # the score of a point under the default metric (the file key of earlier searches)
RESULT = "result.json"


def objective(metric="mAP"):
    """The key of a trial's held-out score under `metric` (the data kind's monitor: mAP, GAP)."""
    return f"holdout_{metric}"


def point_name(point):
    """The folder of a point, e.g. `lr0.0003_step`."""
    return f"lr{point['learning_rate']:g}_{point['schedule']}"


def search_head(config, fit_set, holdout_set, vocabulary, directory, name, embeddings_dir, progress=None,
                metric="mAP", train_backbone=False):
    """Runs (or resumes, or only reads) the grid search of one head.

    Args:
        config: the head's config (`train.epochs`, `seed`, the head); each point sets its own.
        fit_set: `(maps, labels)` trained on; holdout_set: `(maps, labels)` scored.
        vocabulary: the label names; embeddings_dir: the label-embedding cache of `fit_set`'s labels.
        progress: optional `callable(point, result)` called after each point trained here.
        metric: the held-out metric a point is chosen by (`objective(metric)` in each result).
        train_backbone: train the config's backbone over cached inputs (video; `feature_head`).

    Returns:
        `{"selected": point, objective(metric): best, "trials": [each point's result]}`.
    """
    key = objective(metric)
    trials = []
    for point in grid.points():
        path = os.path.join(directory, name, point_name(point), RESULT)
        if os.path.exists(path):
            with open(path) as f:
                trials.append(json.load(f))
            continue
        result = train_head_on_features(grid.apply_point(config, point), *fit_set, {"holdout": holdout_set},
                                        vocabulary, embeddings_dir, epoch_metrics=False, train_backbone=train_backbone)
        score = 0.0 if "diverged" in result else float(result["metrics"]["holdout"][metric])
        trial = {"point": point, key: score, "diverged": result.get("diverged"), "seconds": result["seconds"]}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_text(path, json.dumps(trial, indent=2))
        trials.append(trial)
        if progress is not None:
            progress(point, trial)
    best = max(trials, key=lambda t: t[key])
    return {"selected": best["point"], key: best[key], "trials": trials}
