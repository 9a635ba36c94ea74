"""ASGE at YouTube-8M's size: the paper's recipe (SGD lr 0.01 on the plain sum of Eq. 4) against
ours (Adam lr 0.001, zero pairs balanced, the row guard of docs/design.md §2.21) on synthetic
label graphs shaped like YouTube-8M's (labels in latent topics, power-law popularity, 1-5 labels
per video; `tests/graph/sparse_graph.py`).

For each size and recipe: zero embeddings, Pearson of `cos(e_i, e_j)` against `A'` on the
non-zero pairs and on those plus as many zero pairs, seconds per step, and the process's peak
memory. The last line is JSON with `zero_rows_paper`, `zero_rows_ours`, `pearson_nonzero_ours`,
`step_time_ratio` (ours / paper, same run) keyed by the number of labels.

    .venv/bin/python bench/asge_scale.py --labels=1000,3862 --steps=600
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.report import print_table, write_report  # noqa: E402

RECIPES = {
    "paper (SGD 0.01, plain sum)": dict(optimizer="sgd", balance_pairs=False, row_guard=0.0),
    "ours (Adam 0.001, balanced, row guard)": dict(optimizer="adam", balance_pairs=True, row_guard=1.0),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default="1000,3862", help="Comma-separated label counts.")
    parser.add_argument("--steps", type=int, default=600, help="ASGE steps per fit (the configs use 3,000).")
    parser.add_argument("--alpha", type=float, default=0.1, help="Eq. 5 relaxation (0.1: the paper's YouTube-8M setting).")
    parser.add_argument("--units", type=int, default=256, help="Embedding width C_e (the paper's 256).")
    parser.add_argument("--json_out", default="bench/results/asge_scale.json")
    args = parser.parse_args()

    from cma_tf.graph.asge_model import fit_asge
    from tests.graph.sparse_graph import conditional_adjacency, sparse_topic_counts

    rows, result = [], {}
    for num_labels in [int(n) for n in args.labels.split(",")]:
        adjacency = conditional_adjacency(sparse_topic_counts(num_labels))
        figures = {}
        for name, recipe in RECIPES.items():
            start = time.perf_counter()
            _, report = fit_asge(adjacency, units=args.units, steps=args.steps, alpha=args.alpha, check=False, **recipe)
            seconds = (time.perf_counter() - start) / args.steps
            peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            figures[recipe["optimizer"]] = dict(report, seconds_per_step=seconds)
            rows.append([
                f"{num_labels:,}", f"{100 * report['nonzero_fraction']:.2f} %", name, f"{report['zero_rows']:,}",
                f"{report['pearson_nonzero']:.3f}", f"{report['pearson_balanced']:.3f}", f"{report['rmse']:.4f}",
                f"{seconds:.3f}", f"{peak_gib:.2f}",
            ])
        result[str(num_labels)] = {
            "zero_rows_paper": figures["sgd"]["zero_rows"],
            "zero_rows_ours": figures["adam"]["zero_rows"],
            "pearson_nonzero_ours": figures["adam"]["pearson_nonzero"],
            "pearson_balanced_ours": figures["adam"]["pearson_balanced"],
            "step_time_ratio": figures["adam"]["seconds_per_step"] / figures["sgd"]["seconds_per_step"],
            "seconds_per_step_ours": figures["adam"]["seconds_per_step"],
        }
    print(f"ASGE fits, {args.steps} steps, α = {args.alpha}, C_e = {args.units} (NaN: every embedding zero)")
    print_table(
        ["labels", "non-zero pairs", "recipe", "zero rows", "Pearson non-zero", "Pearson balanced", "RMSE",
         "s/step", "peak RSS GiB"],
        rows, "rrlrrrrrr",
    )
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
