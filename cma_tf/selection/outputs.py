"""What `python -m cma_tf.select` leaves in `--out`: the table, `selected.py`, the command, a JSON
summary and an HTML page.

    selected.py    a config file: `python -m cma_tf.train --config=DIR/selected.py --workdir=…` trains
                   the recommended head at its chosen point on the whole training split
    command.txt    that command
    summary.json   the plan, every head's row, the dropped heads and the recommendation
    report.html    the table, then `cma_tf.evaluate --report`'s page for the leading heads' first
                   seed on the held-out part (per-label AP sorted by where the first two differ)
"""

import html
import json
import os

from cma_tf.atomic import write_text
from cma_tf.selection import grid

SELECTED, COMMAND, SUMMARY, REPORT = "selected.py", "command.txt", "summary.json", "report.html"


def selected_config(user_config, head, point, reads_images):
    """The user's config with `head`, its loss and the chosen point; images keep the backbone
    frozen (`train.backbone_lr_multiplier = 0`), as it was when the head was chosen."""
    from cma_tf.selection.candidates import candidate_config

    config = grid.apply_point(candidate_config(user_config, head), point)
    config.seed = 0
    if reads_images:
        config.train.backbone_lr_multiplier = 0.0
    return config


def write_selected(out_dir, config, reason, data_dir):
    """Writes `selected.py` (the config's values over the package defaults) and `command.txt`;
    returns the command."""
    path = os.path.abspath(os.path.join(out_dir, SELECTED))
    command = f"python -m cma_tf.train --config={path} --workdir={os.path.abspath(os.path.join(out_dir, 'train'))}"
    values = json.dumps(config.to_dict(), indent=1, sort_keys=True, default=list)
    text = (f'"""The head `python -m cma_tf.select` recommends for {data_dir}: {config.model.head}, lr '
            f'{config.train.learning_rate:g}, schedule {config.train.schedule}.\n\n{reason}.\n\n'
            f'Train it on the whole training split (evaluated on config.data.eval_split):\n\n    {command}\n'
            + ('\nThe backbone stays frozen, as when the head was chosen; fine-tune it at a tenth of the head\'s '
               'learning rate with --config.train.backbone_lr_multiplier=0.1.\n' if config.train.backbone_lr_multiplier == 0
               else '') + '"""\n\n'
            'import json\n\nfrom cma_tf.config_base import config_from_dict\n\n'
            f'VALUES = json.loads(r"""{values}""")\n\n\n'
            'def get_config():\n    return config_from_dict(VALUES)\n')
    write_text(path, text)
    write_text(os.path.join(out_dir, COMMAND), command + "\n")
    return command


def table_rows(summary, metric):
    """The printed table's rows (one per head, best first; the dropped heads last)."""
    rows = []
    for row in summary["rows"]:
        std = "" if row["std"] is None else f" ± {100 * row['std']:.1f}"
        aside = "".join(f"; {u['learning_rate']:g} {u['schedule']} set aside: its seeds diverged"
                        for u in row.get("unstable", []))
        rows.append([row["head"], f"{100 * row['mean']:.1f}{std}", row["seeds"],
                     f"{row['selected']['learning_rate']:g} {row['selected']['schedule']}{aside}",
                     f"{row['ms_per_example']:.2f}", "" if row["step_ratio"] is None else f"{row['step_ratio']:.2f}",
                     row["verdict"]])
    for head, reason in summary["dropped"].items():
        rows.append([head, "dropped", 0, "", "", "", f"dropped: {reason}"])
    return rows


HEADERS = ("head", "held-out {metric} (%)", "seeds", "chosen lr, schedule", "train ms / example", "step / plain",
           "verdict")


def headers(metric):
    return [h.format(metric=metric) for h in HEADERS]


def markdown_table(header, rows):
    """A Markdown table (the first column left-aligned, the others right)."""
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_summary(out_dir, result, command):
    """`summary.json`: the plan, the rows, the dropped heads, the recommendation and the command."""
    summary = dict(result["summary"], metric=result["metric"], plan=result["plan"], command=command,
                   holdout_examples=int(len(result["holdout_labels"])))
    write_text(os.path.join(out_dir, SUMMARY), json.dumps(summary, indent=2))
    return summary


def write_report(out_dir, result, kind_keys, title):
    """`report.html`: the table, then the evaluation page of the leading heads (their first
    seed's scores on the held-out part)."""
    import numpy as np

    from cma_tf.selection import protocol
    from cma_tf.visualization.report import _table, build_report

    summary, metric = result["summary"], result["metric"]
    leaders = [row["head"] for row in summary["rows"]][:3]
    metrics, predictions = {}, {}
    for head in leaders:
        run = next(r for r in result["outcomes"][head]["runs"] if not r.get("diverged"))
        scores_path = os.path.join(out_dir, "heads", head, "seeds", f"seed{run['seed']}", protocol.SCORES)
        metrics[head] = run["metrics"]
        predictions[head] = (np.load(scores_path).astype(np.float32), result["holdout_labels"])
    table = _table(headers(metric), table_rows(summary, metric))
    intro = (f"<h2>Which head</h2><p>Recommended: <b>{html.escape(str(summary['recommended']))}</b>. "
             f"{html.escape(summary['reason'])}.</p>{table}<p>Mean ± std over seeds on the held-out part of the "
             "training split; a head within the sum of its and the best's stds is a tie. Below: the leading heads' first seed.</p>")
    if metrics:
        thresholds = {head: np.full(len(result["vocabulary"]), 0.5) for head in metrics}
        page = build_report(metrics, kind_keys, predictions, result["vocabulary"], thresholds, title,
                            attention_note="not drawn by cma_tf.select (python -m cma_tf.visualize on a trained run)",
                            items="held-out examples")
        page = page.replace("</h1>", "</h1>" + intro, 1)
    else:
        page = f"<!DOCTYPE html><html><body><h1>{html.escape(title)}</h1>{intro}</body></html>"
    path = os.path.join(out_dir, REPORT)
    write_text(path, page)
    return path
