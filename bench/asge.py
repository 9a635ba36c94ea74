"""ASGE and the label graph from COCO's 80 labels to Open Images' 20,000: time and peak memory to
reach a stated fit quality, and how each grows with N.

Graphs: N = 80 is the real COCO train2014 graph (cma_tf/datasets/coco2014_label_stats.json); 1,000,
3,862 and 20,000 are synthetic videos whose labels come in topics of 100 with power-law
popularity (`tests/graph/sparse_graph.topic_label_lists`, 20 videos a label), counted by the
streaming `LabelCooccurrence` (sparse above `DENSE_MAX_LABELS`). Every size runs in its own
process, so its peak RSS (`VmHWM`, TensorFlow's own ~0.6 GB included) is its own.

Per size, ASGE (the defaults: Adam 0.001, balanced zero pairs, the row guard at `--row_guard`,
C_e = 256, α = `--alpha`) fits
from the non-zero pairs (`method="pairs"`) until the fit reaches the target, checked every
`--check_every` steps in inference mode: off-diagonal RMSE ≤ 0.026 on the real COCO graph (the
paper's figure), Pearson r ≥ 0.7 on the non-zero pairs of the synthetic ones, no zero row
(every check is kept in the JSON, `checks`, with the step a first embedding died at). The
reference in the same run is the dense computation (`method="dense"`, N² floats) timed over
`--reference_steps` where it fits in memory (not at 20,000: 1.6 GB a matrix, several of them).

    .venv/bin/python bench/asge.py                     # all four sizes (~1 h on 2 cores)
    .venv/bin/python bench/asge.py --labels=80,1000    # a quick look

The last line is JSON: `largest_n`, `peak_rss_mb` (at the largest N), and per size `sizes`.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.report import peak_rss_mb, print_table, run_worker, write_report  # noqa: E402

COCO_RMSE = 0.026  # the paper's fit of the COCO graph
SYNTHETIC_PEARSON = 0.7


def coco_graph():
    import numpy as np

    from cma_tf.datasets.coco_label_sets import load_label_statistics
    from cma_tf.graph.cooccurrence import LabelGraph

    stats = load_label_statistics()
    counts = stats.cooccurrence.copy()
    np.fill_diagonal(counts, stats.class_counts)
    return LabelGraph(counts, num_examples=stats.num_images, vocabulary=list(stats.labels))


def synthetic_graph(num_labels):
    from cma_tf.graph.cooccurrence import LabelCooccurrence, LabelGraph
    from tests.graph.sparse_graph import topic_label_lists

    lists = topic_label_lists(num_labels)
    accumulator = LabelCooccurrence(num_labels)
    for start in range(0, len(lists), 65_536):
        accumulator.update(lists[start:start + 65_536])
    return LabelGraph(accumulator.counts, accumulator.num_examples)


def reached(report, num_labels):
    if report["zero_rows"] or report["nonfinite_rows"]:
        return False
    if num_labels == 80:
        return report["rmse"] <= COCO_RMSE
    return report["pearson_nonzero"] >= SYNTHETIC_PEARSON


def worker(args):
    """One size in this process: prints one JSON line."""
    import keras
    import numpy as np

    from cma_tf.graph.asge_model import fit_asge
    from cma_tf.graph.graph_pairs import GraphPairs, pair_off_diagonal_fit

    start = time.perf_counter()
    graph = coco_graph() if args.labels == "80" else synthetic_graph(int(args.labels))
    adjacency = graph.adjacency
    build_seconds = time.perf_counter() - start
    num_labels = graph.num_classes
    pairs = GraphPairs.from_adjacency(adjacency)

    class Checker(keras.callbacks.Callback):
        """Every `check_every` steps: the fit in inference mode; stops at the target."""

        def __init__(self):
            super().__init__()
            self.start, self.excluded, self.reached_at, self.checks = None, 0.0, None, []

        def on_train_batch_end(self, batch, logs=None):
            done = batch + 1
            if self.start is None:  # timed from the end of the first step: tracing is not a step's cost
                self.start, self.first = time.perf_counter(), done
            if done % args.check_every:
                return
            checking = time.perf_counter()
            seconds = checking - self.start - self.excluded
            encoder = self.model.encoder
            encoder.set_statistics_to_the_full_batch()
            report = pair_off_diagonal_fit(np.asarray(encoder.all_embeddings(training=False)), pairs)
            self.excluded += time.perf_counter() - checking
            self.checks.append(dict(step=done, seconds=seconds, guarded_rows=int(logs["guarded_rows"]), **report))
            if self.reached_at is None and reached(report, num_labels):
                self.reached_at = self.checks[-1]
                self.model.stop_training = not args.run_through

    checker = Checker()
    fit_start = time.perf_counter()
    _, report = fit_asge(adjacency, steps=args.max_steps, alpha=args.alpha, method=args.method, check=False,
                         row_guard=args.row_guard, callbacks=[checker])
    fit_seconds = time.perf_counter() - fit_start
    done = report["steps"]
    timed = checker.checks[-1]["seconds"] / (checker.checks[-1]["step"] - checker.first) if checker.checks else None
    result = dict(
        num_labels=num_labels, method=args.method, nonzero_pairs=int(pairs.num_pairs),
        graph_sparse=bool(graph.is_sparse), build_seconds=build_seconds, steps=done,
        seconds_per_step=timed if timed else fit_seconds / done, fit_seconds=fit_seconds,
        reached=checker.reached_at, checks=[
            {key: check[key] for key in
             ("step", "seconds", "rmse", "pearson_nonzero", "pearson_balanced", "zero_rows", "guarded_rows")}
            for check in checker.checks
        ],
        first_zero_row_step=next((check["step"] for check in checker.checks if check["zero_rows"]), None),
        most_zero_rows=max((check["zero_rows"] for check in checker.checks), default=0),
        rmse=report["rmse"], pearson_nonzero=report["pearson_nonzero"],
        pearson_balanced=report["pearson_balanced"], zero_rows=report["zero_rows"],
        peak_rss_mb=peak_rss_mb(),
    )
    print(json.dumps(result))


def fit_in_a_worker(labels, method, steps, args, check_every=None):
    result, _ = run_worker(__file__, [
        f"--labels={labels}", f"--method={method}", f"--max_steps={steps}",
        f"--check_every={check_every or args.check_every}", f"--alpha={args.alpha}", f"--row_guard={args.row_guard}",
    ] + (["--run_through"] if args.run_through else []))
    if result is None:
        raise SystemExit(f"bench/asge.py: the {method} fit at {labels} labels failed")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default="80,1000,3862,20000", help="Comma-separated sizes (80: the real COCO graph).")
    parser.add_argument("--max_steps", type=int, default=3000, help="Give up on the target after this many steps.")
    parser.add_argument("--check_every", type=int, default=100, help="Steps between checks of the fit.")
    parser.add_argument("--reference_steps", type=int, default=100,
                        help="Steps of the dense reference timed where it fits (0: none).")
    parser.add_argument("--dense_max_labels", type=int, default=4096, help="Largest N the dense reference runs at.")
    parser.add_argument("--alpha", type=float, default=0.0, help="Eq. 5's α (> 0 adds the blocked N² pass).")
    parser.add_argument("--row_guard", type=float, default=1.0,
                        help="Weight of the row guard beside Eq. 4 (asge.row_guard_loss; 0: Eq. 4 alone).")
    parser.add_argument("--run_through", action="store_true",
                        help="Keep fitting to --max_steps after the target (is the fit still healthy at the end?).")
    parser.add_argument("--json_out", default="bench/results/asge.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="pairs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    sizes, rows = {}, []
    for labels in args.labels.split(","):
        print(f"N = {labels}: fitting from the pairs …", file=sys.stderr, flush=True)
        ours = fit_in_a_worker(labels, "pairs", args.max_steps, args)
        reference = None
        if args.reference_steps and int(labels) <= args.dense_max_labels:
            print(f"N = {labels}: the dense reference …", file=sys.stderr, flush=True)
            reference = fit_in_a_worker(labels, "dense", args.reference_steps, args, check_every=args.reference_steps)
        hit = ours["reached"]
        sizes[labels] = dict(
            ours, reference_seconds_per_step=reference and reference["seconds_per_step"],
            reference_peak_rss_mb=reference and reference["peak_rss_mb"],
            step_time_ratio=reference and ours["seconds_per_step"] / reference["seconds_per_step"],
            steps_to_target=hit and hit["step"], seconds_to_target=hit and hit["seconds"],
        )
        target = f"RMSE ≤ {COCO_RMSE}" if labels == "80" else f"r(non-zero) ≥ {SYNTHETIC_PEARSON}"
        rows.append([
            f"{int(labels):,}", f"{ours['nonzero_pairs']:,}", "sparse" if ours["graph_sparse"] else "dense",
            f"{ours['build_seconds']:.1f}", target,
            f"{hit['step']:,}" if hit else f"not in {ours['steps']:,}",
            f"{hit['seconds']:.0f}" if hit else "–",
            f"{1000 * ours['seconds_per_step']:.0f}",
            f"{1000 * reference['seconds_per_step']:.0f}" if reference else "not run",
            f"{ours['peak_rss_mb']:,.0f}", f"{reference['peak_rss_mb']:,.0f}" if reference else "–",
            f"{ours['rmse']:.4f}", f"{ours['pearson_nonzero']:.3f}", f"{ours['pearson_balanced']:.3f}",
            f"{ours['zero_rows']:,}" + (
                f" (most {ours['most_zero_rows']:,}, from {ours['first_zero_row_step']:,})" if ours["first_zero_row_step"] else ""
            ),
        ])
    print(f"ASGE fits (Adam 0.001, balanced, row guard {args.row_guard}, C_e = 256, α = {args.alpha}), one process per size")
    print_table(
        ["labels", "non-zero pairs", "counts", "graph s", "target", "steps to target", "s to target",
         "ms/step (pairs)", "ms/step (dense)", "peak RSS MB (pairs)", "peak RSS MB (dense)", "RMSE", "r non-zero",
         "r balanced", "zero rows at the end (most at a check, first at step)"],
        rows, "rrlrlrrrrrrrrrr",
    )
    largest = max(sizes, key=int)
    write_report(dict(largest_n=int(largest), peak_rss_mb=sizes[largest]["peak_rss_mb"], alpha=args.alpha,
                      row_guard=args.row_guard, sizes=sizes), args.json_out)


if __name__ == "__main__":
    main()
