"""Which head for the user's data, within a time budget: the work of `python -m cma_tf.select`.

    1. The training split is read once into a cache (`feature_cache.py`): the frozen backbone's
       maps for images (the `small_synthetic` preset, or the user's weights), the decoded frame
       features for video (whose SNet/FC then trains with each head). The eval split is never read.
    2. Each candidate head's train step is timed on that cache; the plan takes heads cheapest
       first while the estimated time of their whole protocol (the 10-point search on the training
       split minus its held-out part, then `seeds` runs of the chosen point) fits the budget. A
       budget below two heads with two seeds each is refused, naming the smallest that would do.
    3. Each planned head runs `protocol.judge_head` (seeds scored on the held-out part): a head
       whose every seed diverged is dropped, with the reason.
    4. `summarize` ranks the heads by mean held-out score, calls a head within the sum of its and
       the best's stds a tie, and recommends the cheapest of the tied best.

Every run is a file under `out_dir/heads/<head>/` and the plan is `out_dir/plan.json`, so the
same call after a kill goes on where it stopped and ends with the same table.
"""

import json
import os

import numpy as np

from cma_tf import factory
from cma_tf.atomic import write_text
from cma_tf.errors import ConfigError
from cma_tf.selection import candidates, feature_cache, grid, protocol
from cma_tf.selection.feature_head import InputFeatures, step_seconds
from cma_tf.selection.holdout import holdout_split

PLAN = "plan.json"
OVERHEAD = 1.3  # the estimate's margin over the timed steps: building, evaluation, the data pipeline
MIN_HEADS, MIN_SEEDS = 2, 2
COST_MARGIN = 0.9


def selection_key(config, heads, seeds, budget_minutes):
    """What makes two invocations the same selection: the config's values (as JSON) and the flags
    that change the plan."""
    return {"config": json.loads(json.dumps(config.to_dict(), default=str)), "heads": list(heads),
            "seeds": int(seeds), "budget_minutes": float(budget_minutes)}


def prepare_cache(config, cache_dir, progress=True):
    """`(train_set, train_backbone)`: the cached training split, and whether the config's own
    backbone trains over it (video) rather than being frozen under it (images)."""
    kind = factory.data_kind(config)
    if kind.reads_images:
        backbone, train_backbone = factory.build_backbone(config), False
    else:
        backbone, train_backbone = InputFeatures(), True
    return feature_cache.load_or_compute(config, backbone, config.data.train_split, cache_dir, progress), train_backbone


def run_seconds(step, num_examples, config):
    """The estimated seconds of one run of `config.train.epochs` over `num_examples`."""
    steps = max(1, num_examples // config.train.batch_size) * config.train.epochs
    return OVERHEAD * step * steps


def estimate(step, num_train, config, seeds):
    """`{"search": s, "seeds": s, "total": s}` of one head's protocol."""
    fit = len(holdout_split(num_train)[0])
    search = len(grid.points()) * run_seconds(step, fit, config)
    seeds_s = seeds * run_seconds(step, fit, config)
    return {"search": search, "seeds": seeds_s, "total": search + seeds_s}


def make_plan(steps, num_train, base, heads, seeds, budget_seconds):
    """The heads that fit the budget, cheapest first, and each head's estimate; raises a
    `ConfigError` naming the smallest budget when not even `MIN_HEADS` heads with `MIN_SEEDS`
    seeds fit."""
    order = sorted(heads, key=lambda h: steps[h])
    estimates = {h: estimate(steps[h], num_train, candidates.candidate_config(base, h), seeds) for h in order}
    smallest = sum(estimate(steps[h], num_train, candidates.candidate_config(base, h), MIN_SEEDS)["total"]
                   for h in order[:MIN_HEADS])
    if len(order) < MIN_HEADS:
        raise ConfigError(f"--heads: at least {MIN_HEADS} heads are needed to choose between, got {', '.join(heads)}")
    if budget_seconds < smallest:
        raise ConfigError(
            f"--budget_minutes={budget_seconds / 60:g} is too small: searching {MIN_HEADS} heads "
            f"({', '.join(order[:MIN_HEADS])}) and training {MIN_SEEDS} seeds of each takes about "
            f"{int(np.ceil(smallest / 60))} minutes here; give --budget_minutes={int(np.ceil(smallest / 60))} or more")
    planned, total = [], 0.0
    for head in order:
        if total + estimates[head]["total"] > budget_seconds and len(planned) >= MIN_HEADS:
            break
        planned.append(head)
        total += estimates[head]["total"]
    seeds_run = seeds if total <= budget_seconds else MIN_SEEDS  # two cheap heads with the minimum
    return {"heads": planned, "left_out": [h for h in order if h not in planned], "seeds": seeds_run,
            "estimates": estimates, "step_seconds": steps, "estimated_seconds": total}


def load_or_make_plan(out_dir, key, make):
    """The plan kept in `out_dir` for this selection (so a rerun does the same work), or `make()`'s,
    saved. A plan of another config or flags is refused, naming what differs; a config field the
    kept plan lacks (added to the package since) is not a difference."""
    from cma_tf.training.workdir import config_differences, describe_differences

    path = os.path.join(out_dir, PLAN)
    if os.path.exists(path):
        with open(path) as f:
            plan = json.load(f)
        kept = plan.get("key", {})
        differences = config_differences(kept.get("config", {}), key["config"])
        differences += [(flag, kept.get(flag), key[flag]) for flag in ("heads", "seeds", "budget_minutes")
                        if kept.get(flag) != key[flag]]
        if differences:
            raise ConfigError(f"{out_dir} holds a selection of another config or flags ({path}: "
                              f"{describe_differences(differences)}): give another --out, or remove it to start again")
        return plan
    plan = dict(make(), key=key)
    os.makedirs(out_dir, exist_ok=True)
    write_text(path, json.dumps(plan, indent=2))
    return plan


def tie(best, row):
    """Whether `row` ties `best`: the difference of their means is within the sum of their stds
    (the rule of the heads benchmark's tables)."""
    return best["mean"] - row["mean"] <= (best["std"] or 0.0) + (row["std"] or 0.0)


def summarize(outcomes, plan, metric):
    """The table rows, best first, and the recommendation.

    Args:
        outcomes: `{head: judge_head's result}`.
        plan: the plan (step seconds per head).
        metric: the score's name.

    Returns:
        `{"rows": [...], "dropped": {head: reason}, "recommended": head, "reason": one line}`.
    """
    steps = plan["step_seconds"]
    reference = steps.get("plain")
    rows, dropped = [], {}
    for head, outcome in outcomes.items():
        runs = outcome["runs"]
        scores = [protocol.score_of(r) for r in runs if not r.get("diverged")]
        if outcome["selected"] is None:
            first = next((d for u in outcome.get("unstable", []) for d in u["diverged"] if d),
                         next((t["diverged"] for t in outcome["trials"] if t.get("diverged")), None))
            dropped[head] = "every grid point diverged, in the search or in most of its seeds" + (
                f" ({first})" if first else "")
            continue
        if not scores:
            dropped[head] = next((r["diverged"] for r in runs if r.get("diverged")), "no seed finished")
            continue
        rows.append({
            "head": head, "mean": float(np.mean(scores)),
            "std": float(np.std(scores, ddof=1)) if len(scores) > 1 else None, "seeds": len(scores),
            "diverged_seeds": sum(bool(r.get("diverged")) for r in runs), "selected": outcome["selected"],
            "unstable": [u["point"] for u in outcome.get("unstable", [])],
            "search_score": outcome[f"holdout_{metric}"], "step_seconds": steps[head],
            "ms_per_example": 1000 * steps[head] / plan["batch_size"],
            "step_ratio": steps[head] / reference if reference else None,
        })
    rows.sort(key=lambda r: -r["mean"])
    if not rows:
        return {"rows": [], "dropped": dropped, "recommended": None, "reason": "every head diverged"}
    best = rows[0]
    for row in rows:
        row["verdict"] = "best" if row is best else "tie" if tie(best, row) else "behind"
    tied = [r for r in rows if r["verdict"] in ("best", "tie")]
    # Cheaper means a step at least COST_MARGIN faster than the best's (timed steps vary by a few
    # percent); among the cheaper, the fastest, then the higher score. None cheaper: the best.
    cheaper = [r for r in tied if r["step_seconds"] < COST_MARGIN * best["step_seconds"]]
    chosen = min(cheaper, key=lambda r: (round(r["step_seconds"] / best["step_seconds"], 1), -r["mean"])) \
        if cheaper else best
    if len(tied) == 1:
        reason = (f"{chosen['head']} leads by more than the spread of the seeds "
                  f"({100 * best['mean']:.1f} ± {100 * (best['std'] or 0):.1f} against "
                  f"{rows[1]['head']} {100 * rows[1]['mean']:.1f})" if len(rows) > 1
                  else f"{chosen['head']} is the only head that trained")
    else:
        others = ", ".join(r["head"] for r in tied if r is not chosen)
        reason = (f"{chosen['head']} ties the best ({best['head']} {100 * best['mean']:.1f} ± "
                  f"{100 * (best['std'] or 0):.1f}; tied: {others}) and is the cheapest of them "
                  f"({chosen['step_seconds'] / best['step_seconds']:.2g}× {best['head']}'s step time)"
                  if chosen is not best else
                  f"{chosen['head']} is the best, and none of the heads tied with it ({others}) is cheaper by "
                  f"{100 * (1 - COST_MARGIN):.0f} % or more")
    return {"rows": rows, "dropped": dropped, "recommended": chosen["head"], "reason": reason}


def choose(base, heads, out_dir, budget_minutes, seeds, progress_factory=None, log=print):
    """Runs (or resumes) the whole selection; returns `{"plan", "summary", "outcomes", "metric",
    "vocabulary", "holdout_labels"}`.

    Args:
        base: the user's config (data, backbone, epochs, batch size); each head is set on a copy.
        heads: the candidate heads (`candidates.default_heads` when empty).
        out_dir: where the cache, the plan and every run go.
        budget_minutes: the time the selection may take (estimated from timed steps).
        seeds: seeds per head at its chosen point (0, 1, …).
        progress_factory: optional `callable(total_seconds, done_seconds)` returning a bar with
            `update(seconds)` and `close()` (tqdm's interface).
    """
    kind = factory.data_kind(base)
    metric = kind.monitor
    heads = list(heads) or list(candidates.default_heads(kind.reads_images, frame_level=kind.name == "yt8m_frame"))
    vocabulary = factory.read_vocabulary(base)
    train_set, train_backbone = prepare_cache(base, os.path.join(out_dir, "cache"))
    embeddings_dir = os.path.join(out_dir, "embeddings")
    fit_set, holdout_set = protocol.split_for_search(train_set)
    if len(fit_set[1]) < base.train.batch_size:
        raise ConfigError(
            f"the training split of {factory.data_kind(base).source(base)} less its held-out part is {len(fit_set[1])} examples, fewer "
            f"than one batch (config.train.batch_size={base.train.batch_size}): give a smaller "
            "--config.train.batch_size")

    def make():
        steps = {}
        for head in heads:
            log(f"timing {head}'s train step …")
            steps[head] = step_seconds(candidates.candidate_config(base, head), *fit_set, vocabulary, embeddings_dir,
                                       train_backbone)
        return dict(make_plan(steps, len(train_set[1]), base, heads, seeds, 60.0 * budget_minutes),
                    batch_size=int(base.train.batch_size))

    plan = load_or_make_plan(out_dir, selection_key(base, heads, seeds, budget_minutes), make)
    done = sum(trial_seconds(out_dir, head) for head in plan["heads"])
    bar = progress_factory(plan["estimated_seconds"], done) if progress_factory else None
    outcomes, shown = {}, {"seconds": done, "whole": int(done)}

    def progress(stage, result):  # the bar counts whole seconds of finished runs
        shown["seconds"] += result["seconds"]
        if bar is not None and int(shown["seconds"]) > shown["whole"]:
            bar.update(int(shown["seconds"]) - shown["whole"])
            shown["whole"] = int(shown["seconds"])

    try:
        for head in plan["heads"]:
            config = candidates.candidate_config(base, head)

            outcomes[head] = protocol.judge_head(
                config, train_set, vocabulary, os.path.join(out_dir, "heads", head), embeddings_dir,
                seeds=tuple(range(plan["seeds"])), more_seeds=(), progress=progress, metric=metric,
                train_backbone=train_backbone)
    finally:
        if bar is not None:
            bar.close()
    return {"plan": plan, "summary": summarize(outcomes, plan, metric), "outcomes": outcomes, "metric": metric,
            "vocabulary": vocabulary, "holdout_labels": np.asarray(holdout_set[1])}


def trial_seconds(out_dir, head):
    """Seconds of the runs of `head` already finished in `out_dir` (for the progress bar)."""
    total, folder = 0.0, os.path.join(out_dir, "heads", head)
    for root, _, files in os.walk(folder):
        if protocol.RESULT in files:
            with open(os.path.join(root, protocol.RESULT)) as f:
                total += json.load(f).get("seconds", 0.0)
    return total
