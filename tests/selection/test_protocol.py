"""The protocol a head is judged by (`cma_tf/selection/protocol.py`): search on the held-out part,
seeds at the chosen point, more seeds where the spread is wide, and nothing trained twice."""

import os

import numpy as np
import pytest

from cma_tf.config_base import load_config_file
from cma_tf.selection import grid, holdout, protocol

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCABULARY = ["a", "b", "c", "d"]


def small_config():
    config = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config("plain")
    config.train.epochs, config.train.batch_size, config.train.eval_batch_size = 1, 8, 8
    return config


def tiny_split(n=60, seed=0):
    """Random maps in which label `a` shifts the first map: a head can learn something."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 4)) < 0.4).astype(np.uint8)
    maps = [rng.normal(size=(n, 2, 2, 8)).astype(np.float16) + labels[:, None, None, :1].astype(np.float16),
            rng.normal(size=(n, 1, 1, 8)).astype(np.float16)]
    return maps, labels


class FakeTrainer:
    """Stands in for `train_head_on_features`: records what each call trained on and scored, and
    returns an mAP set by the test (per learning rate, plus a per-seed offset)."""

    def __init__(self, by_lr, by_seed=None, diverge=()):
        self.by_lr, self.by_seed, self.calls = by_lr, by_seed or {}, []
        self.diverge = set(diverge)  # (lr, seed) of the seed runs (not the search's) whose loss turns NaN

    def __call__(self, config, maps, labels, eval_sets, vocabulary, embeddings_dir, epoch_metrics=True,
                 train_backbone=False, return_scores=False, epoch_metric="mAP"):
        self.calls.append({"lr": config.train.learning_rate, "seed": config.seed, "n": len(labels),
                           "eval": {name: len(s[1]) for name, s in eval_sets.items()},
                           "epoch_metrics": epoch_metrics, "epoch_metric": epoch_metric})
        if epoch_metrics is not False and (config.train.learning_rate, config.seed) in self.diverge:
            return {"diverged": "the training loss became non-finite in epoch 2", "seconds": 0.0,
                    "history": [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": float("nan")}]}
        mAP = self.by_lr[config.train.learning_rate] + self.by_seed.get(config.seed, 0.0)
        return {"metrics": {name: {"mAP": mAP, "GAP": mAP, "AP_per_class": {}} for name in eval_sets},
                "history": [{"epoch": 1, "loss": 1.0}], "seconds": 0.0,
                "scores": {name: np.zeros((len(s[1]), 4), np.float32) for name, s in eval_sets.items()}}


@pytest.fixture
def fake(monkeypatch):
    def install(by_lr, by_seed=None, diverge=()):
        trainer = FakeTrainer(by_lr, by_seed, diverge)
        monkeypatch.setattr(protocol, "train_head_on_features", trainer)
        monkeypatch.setattr("cma_tf.selection.search.train_head_on_features", trainer)
        return trainer
    return install


LRS = {1e-4: 0.5, 3e-4: 0.6, 1e-3: 0.8, 3e-3: 0.7, 1e-2: 0.65}


def test_the_seeds_train_the_point_chosen_on_the_held_out_part(fake, tmp_path):
    trainer = fake(LRS)
    train = tiny_split(100)
    val = tiny_split(30, seed=1)
    outcome = protocol.judge_head(small_config(), train, VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                                  final=(train, "val", val))
    fit, held = holdout.holdout_split(100)
    search_calls, seed_calls = trainer.calls[:len(grid.points())], trainer.calls[len(grid.points()):]
    assert all(c["n"] == len(fit) and c["eval"] == {"holdout": len(held)} for c in search_calls)
    assert outcome["selected"]["learning_rate"] == 1e-3  # the best held-out mAP
    assert [c["seed"] for c in seed_calls] == list(protocol.SEEDS)  # std 0: no more seeds
    assert all(c["lr"] == 1e-3 and c["n"] == 100 and c["eval"] == {"val": 30} for c in seed_calls)


def test_the_seeds_log_the_metric_chosen_by_after_each_epoch_and_the_search_logs_none(fake, tmp_path):
    """Video chooses by GAP: its seeds log the GAP each epoch (what its convergence column reads)."""
    trainer = fake(LRS)
    train = tiny_split(100)
    protocol.judge_head(small_config(), train, VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                        final=(train, "val", tiny_split(30, seed=1)), metric="GAP")
    search_calls, seed_calls = trainer.calls[:len(grid.points())], trainer.calls[len(grid.points()):]
    assert all(c["epoch_metrics"] is False for c in search_calls)
    assert seed_calls and all(c["epoch_metrics"] == ["val"] and c["epoch_metric"] == "GAP" for c in seed_calls)


def test_without_a_final_split_the_seeds_score_the_held_out_part_and_val_is_never_read(fake, tmp_path):
    trainer = fake(LRS)
    protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    fit, held = holdout.holdout_split(100)
    assert {tuple(c["eval"].items()) for c in trainer.calls} == {(("holdout", len(held)),)}
    assert {c["n"] for c in trainer.calls} == {len(fit)}


@pytest.mark.parametrize("offsets, runs", [({0: 0.0, 1: 0.03, 2: -0.02}, 5), ({0: 0.0, 1: 0.004, 2: -0.004}, 3)])
def test_a_spread_over_one_point_gets_two_more_seeds(fake, tmp_path, offsets, runs):
    fake(LRS, offsets)
    outcome = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert len(outcome["runs"]) == runs
    values = [r["mAP"] for r in outcome["runs"][:3]]
    assert (np.std(values, ddof=1) > protocol.MORE_SEEDS_ABOVE) == (runs == 5)


def test_a_finished_protocol_trains_nothing_again(fake, tmp_path):
    fake(LRS, {1: 0.03})
    first = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    again = fake(LRS, {1: 0.03})
    second = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert again.calls == []
    assert second["selected"] == first["selected"] and [r["mAP"] for r in second["runs"]] == [r["mAP"] for r in first["runs"]]


@pytest.mark.slow
def test_a_real_head_goes_through_the_protocol(tmp_path):
    """The package's plain head on tiny maps, one epoch per run: every run finite, recorded."""
    outcome = protocol.judge_head(small_config(), tiny_split(60), VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                                  more_seeds=())
    assert len(outcome["trials"]) == len(grid.points()) and len(outcome["runs"]) == 3
    assert all(np.isfinite(r["mAP"]) and 0.0 < r["mAP"] <= 1.0 for r in outcome["runs"])
    assert os.path.exists(tmp_path / "seeds" / "seed2" / protocol.RESULT)


def test_extra_sets_are_scored_by_the_seeds_only_and_scores_can_be_dropped(fake, tmp_path):
    """bench/video_heads.py scores rated segments beside the videos: the extra set reaches the
    seed runs (never the search, which reads the held-out part alone), its metrics are recorded
    under "extra", and without keep_scores no scores file is written."""
    trainer = fake(LRS)
    extra = tiny_split(10, seed=9)
    outcome = protocol.judge_head(small_config(), tiny_split(), VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                                  final=(tiny_split(), "val", tiny_split(20, seed=3)), more_seeds=(),
                                  extra_sets={"segments": extra}, keep_scores=False)
    search_calls, seed_calls = trainer.calls[:len(grid.points())], trainer.calls[len(grid.points()):]
    assert all(call["eval"] == {"holdout": 9} for call in search_calls)
    assert all(call["eval"] == {"val": 20, "segments": 10} for call in seed_calls)
    assert all(run["extra"]["segments"]["mAP"] == LRS[1e-3] for run in outcome["runs"])
    assert not os.path.exists(tmp_path / "seeds" / "seed0" / protocol.SCORES)


def test_a_weighted_eval_set_scores_the_weighted_probabilities(tmp_path):
    """`(maps, labels, label_weights)`: σ(logits) · weights, as the package scores rated segments
    (`training/callbacks.predict_scores`), from the same trained model as the unweighted set."""
    from cma_tf.selection.feature_head import train_head_on_features

    maps, labels = tiny_split(40, seed=4)
    weights = (np.random.default_rng(5).random(labels.shape) < 0.5).astype(np.uint8)
    result = train_head_on_features(small_config(), *tiny_split(60), {"plain": (maps, labels),
                                                                      "weighted": (maps, labels, weights)},
                                    VOCABULARY, str(tmp_path), epoch_metrics=["plain"], return_scores=True)
    plain, weighted = result["scores"]["plain"], result["scores"]["weighted"]
    assert 0.0 < plain.min() and plain.max() < 1.0
    np.testing.assert_allclose(weighted, plain * weights, rtol=1e-6)
    assert all("plain_mAP" in epoch and "weighted_mAP" not in epoch for epoch in result["history"])


def test_a_shorter_search_leaves_the_seeds_at_full_length(monkeypatch, tmp_path):
    """`search_epochs`: every search run that long, every seed at the config's epochs."""
    epochs = []

    def trainer(config, maps, labels, eval_sets, *args, **kwargs):
        epochs.append(config.train.epochs)
        return {"metrics": {name: {"mAP": 0.5, "AP_per_class": {}} for name in eval_sets},
                "history": [], "seconds": 0.0}

    monkeypatch.setattr(protocol, "train_head_on_features", trainer)
    monkeypatch.setattr("cma_tf.selection.search.train_head_on_features", trainer)
    config = small_config()
    config.train.epochs = 4
    protocol.judge_head(config, tiny_split(), VOCABULARY, str(tmp_path), str(tmp_path / "e"), more_seeds=(),
                        search_epochs=2, keep_scores=False)
    assert epochs == [2] * len(grid.points()) + [4] * len(protocol.SEEDS)


def test_a_seed_run_of_another_point_is_trained_again_not_reused(fake, tmp_path):
    """A search that chooses anew (a wider grid, another split) must not inherit the seeds of its
    earlier choice: `seed_run` reads a finished run only when it is of the point asked for."""
    fake(LRS)
    first = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert first["selected"]["learning_rate"] == 1e-3
    os.remove(os.path.join(tmp_path, "search", "lr0.003_step", "result.json"))  # that point now scores best
    trainer = fake({**LRS, 3e-3: 0.9})
    second = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert second["selected"] == {"learning_rate": 3e-3, "schedule": "step"}
    assert [c["lr"] for c in trainer.calls] == [3e-3] * 4  # the re-run point, then seeds 0-2 at it
    assert all(run["point"] == second["selected"] and run["mAP"] == 0.9 for run in second["runs"])


def test_a_chosen_point_whose_seeds_mostly_diverge_is_rejected_for_the_next_best(fake, tmp_path):
    """Two of three seeds at 1e-3 (the search's best, 0.8, under both schedules) diverge: each
    1e-3 point in turn is recorded as unstable and its runs are moved aside, and the next best
    point (3e-3, 0.7) is seeded instead."""
    trainer = fake(LRS, diverge={(1e-3, 0), (1e-3, 1)})
    train, val = tiny_split(100), tiny_split(30, seed=1)
    outcome = protocol.judge_head(small_config(), train, VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                                  final=(train, "val", val))
    first_choice = protocol.choose(outcome["trials"], "holdout_mAP")["point"]
    assert first_choice["learning_rate"] == 1e-3
    assert outcome["selected"]["learning_rate"] == 3e-3 and outcome["holdout_mAP"] == 0.7
    assert [c["lr"] for c in trainer.calls[len(grid.points()):]] == [1e-3] * 6 + [3e-3] * 3
    assert all(r["point"] == outcome["selected"] and r["mAP"] == 0.7 for r in outcome["runs"])
    assert [u["point"]["learning_rate"] for u in outcome["unstable"]] == [1e-3, 1e-3]
    assert outcome["unstable"][0]["point"] == first_choice
    assert [sum(bool(d) for d in u["diverged"]) for u in outcome["unstable"]] == [2, 2]
    for schedule in grid.SCHEDULES:
        moved = os.path.join(tmp_path, "unstable", "lr0.001_" + schedule, "seeds")
        assert sorted(os.listdir(moved)) == ["seed0", "seed1", "seed2"]
    # resumed or read again: nothing is trained, the same choice comes back
    again = fake(LRS, diverge={(1e-3, 0), (1e-3, 1)})
    second = protocol.judge_head(small_config(), train, VOCABULARY, str(tmp_path), str(tmp_path / "e"),
                                 final=(train, "val", val))
    assert again.calls == [] and second["selected"] == outcome["selected"]


def test_one_diverged_seed_of_three_keeps_the_point(fake, tmp_path):
    fake(LRS, diverge={(1e-3, 2)})
    outcome = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert outcome["selected"]["learning_rate"] == 1e-3 and outcome["unstable"] == []
    assert [bool(r.get("diverged")) for r in outcome["runs"]] == [False, False, True]


def test_a_kill_between_the_record_and_the_move_trains_only_the_next_point(fake, monkeypatch, tmp_path):
    """`reject` writes `unstable.json` before it moves the runs: after a kill between the two the
    rejected point is not seeded again, and its runs left in `seeds/` are not counted."""

    def killed(*args):
        raise KeyboardInterrupt

    fake(LRS, diverge={(1e-3, 0), (1e-3, 1), (1e-3, 2)})
    with monkeypatch.context() as patch:
        patch.setattr(protocol.os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert os.path.exists(os.path.join(tmp_path, protocol.UNSTABLE))
    assert os.path.exists(os.path.join(tmp_path, "seeds", "seed0", "result.json"))  # not moved
    trainer = fake(LRS, diverge={(1e-3, 0), (1e-3, 1), (1e-3, 2)})
    outcome = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert [c["lr"] for c in trainer.calls] == [1e-3] * 3 + [3e-3] * 3  # the other 1e-3 schedule, then 3e-3
    assert len(outcome["unstable"]) == 2
    assert outcome["selected"]["learning_rate"] == 3e-3 and all(r["mAP"] == 0.7 for r in outcome["runs"])


def test_every_point_rejected_or_diverged_leaves_nothing_selected(fake, tmp_path):
    fake(LRS, diverge={(lr, seed) for lr in LRS for seed in protocol.SEEDS})
    outcome = protocol.judge_head(small_config(), tiny_split(100), VOCABULARY, str(tmp_path), str(tmp_path / "e"))
    assert outcome["selected"] is None and outcome["runs"] == []
    assert len(outcome["unstable"]) == len(grid.points())
