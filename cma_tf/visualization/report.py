"""`python -m cma_tf.evaluate … --report=DIR`: one self-contained HTML page comparing workdirs.

`DIR/index.html` holds every picture inline (PNG as `data:` URIs), so the page opens from disk,
is mailed as one file and needs no server. In order:

1. the metric table, one column per workdir (at 0.5, and at the calibrated thresholds where a
   run has them);
2. per-label AP of every workdir, sorted by the size of the difference between the first two
   (|A − B|, largest first: the labels where they differ most, either way), or by AP for one
   workdir;
3. precision-recall curves of the labels where the first two workdirs differ most (or the
   hardest labels for one workdir);
4. the labels most often predicted where absent, with the label they most often stood beside
   (the co-occurrence a head may lean on), each run at its own thresholds, which the page names;
5. the attention of the first workdir with maps on a few validation images; without any (video
   runs, heads without maps), a line saying why instead of the section.
"""

import base64
import html
import io

import numpy as np

from cma_tf.atomic import write_text

CURVE_LABELS = 4
CONFUSIONS_SHOWN = 12


def _png(figure):
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(uri, alt):
    return f'<img src="{uri}" alt="{html.escape(alt)}">'


def _table(header, rows, numeric_from=1):
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = []
    for row in rows:
        cells = [
            f'<td class="{"num" if i >= numeric_from else ""}">{html.escape(str(cell))}</td>' for i, cell in enumerate(row)
        ]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _percent(value):
    return "—" if value is None or value != value else f"{100 * value:.1f}"


def precision_recall_curve(scores, targets):
    """`(precision, recall)` at every cut of the scores sorted high to low (one label)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = np.asarray(targets)[order].astype(bool)
    true_positives = np.cumsum(hits)
    predicted = np.arange(1, len(hits) + 1)
    return true_positives / predicted, true_positives / max(int(hits.sum()), 1)


def confusions(scores, targets, thresholds, vocabulary, shown=CONFUSIONS_SHOWN):
    """Rows `(label, times predicted where absent, the true label most often beside it, how often)`
    for the labels with the most false positives."""
    predicted = np.asarray(scores) >= np.asarray(thresholds)[None, :]
    targets = np.asarray(targets).astype(bool)
    false_positive = predicted & ~targets
    rows = []
    for k in np.argsort(-false_positive.sum(axis=0), kind="stable")[:shown]:
        count = int(false_positive[:, k].sum())
        if count == 0:
            break
        beside = targets[false_positive[:, k]].sum(axis=0)
        beside[k] = 0
        partner = int(np.argmax(beside))
        rows.append((vocabulary[k], count, vocabulary[partner] if beside[partner] else "(nothing)", int(beside[partner])))
    return rows


def _curves(runs, labels, vocabulary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(labels), figsize=(3.3 * len(labels), 3.2), squeeze=False)
    for axis, k in zip(axes[0], labels):
        for name, (scores, targets) in runs.items():
            precision, recall = precision_recall_curve(scores[:, k], targets[:, k])
            axis.plot(recall, precision, label=name, linewidth=1.4)
        axis.set_title(vocabulary[k], fontsize=10)
        axis.set_xlabel("recall")
        axis.set_xlim(0, 1.02)
        axis.set_ylim(0, 1.02)
    axes[0, 0].set_ylabel("precision")
    axes[0, 0].legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


def build_report(metrics, keys, predictions, vocabulary, thresholds, title, attention=None, attention_note="",
                 threshold_notes=None, items="images"):
    """The page as a string.

    Args:
        metrics: `{name: metrics dict}` (fractions), in column order.
        keys: the metric keys of the table.
        predictions: `{name: (scores [M, N], targets [M, N])}` on the evaluated split.
        vocabulary: the N label names.
        thresholds: `{name: [N] thresholds}` of each run (0.5 where not calibrated).
        attention: `data:` URIs of attention grids, or None (the section is left out and
            `attention_note` says why).
        threshold_notes: `{name: sentence}` saying which thresholds a run's false positives are
            counted at (default: "At its thresholds.").
        items: what one row of `predictions` is ("images", "videos", "rated segments").
    """
    names = list(metrics)
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append("<h2>Metrics (%)</h2>")
    parts.append(_table(["metric"] + names, [[key] + [_percent(metrics[n].get(key)) for n in names] for key in keys]))

    ap = {n: np.array([metrics[n]["AP_per_class"][label] for label in vocabulary], np.float64) for n in names}
    if len(names) > 1:
        first, second = names[0], names[1]
        difference = ap[first] - ap[second]
        order = np.argsort(-np.abs(np.nan_to_num(difference)), kind="stable")
        parts.append(f"<h2>AP (%) per label, by the size of the difference {html.escape(first)} − "
                     f"{html.escape(second)} (largest first, either sign)</h2>")
        rows = [[vocabulary[k]] + [_percent(ap[n][k]) for n in names] + [f"{100 * difference[k]:+.1f}"] for k in order]
        parts.append(_table(["label"] + names + ["difference"], rows))
        curve_labels = [int(k) for k in order[:CURVE_LABELS]]
        curve_note = "the labels where the first two differ most"
    else:
        order = np.argsort(np.nan_to_num(ap[names[0]], nan=2.0), kind="stable")
        parts.append("<h2>AP (%) per label, lowest first</h2>")
        parts.append(_table(["label", names[0]], [[vocabulary[k], _percent(ap[names[0]][k])] for k in order]))
        curve_labels = [int(k) for k in order[:CURVE_LABELS]]
        curve_note = "the hardest labels"
    parts.append(f"<h2>Precision-recall curves: {curve_note}</h2>")
    parts.append(_image(_curves(predictions, curve_labels, vocabulary), "precision-recall curves"))

    parts.append("<h2>Predicted where absent</h2>")
    notes = threshold_notes or {name: "At its thresholds." for name in names}
    differ = len({notes[name] for name in names}) > 1
    parts.append(
        f"<p>For each run, the labels most often predicted on {html.escape(items)} that do not carry them (at the "
        "run's own thresholds, named under its name), and the true label they most often stood beside: what the "
        "head may have learned from co-occurrence rather than from the object."
        + (" The counts of runs at different thresholds do not compare." if differ else "") + "</p>"
    )
    for name in names:
        scores, targets = predictions[name]
        rows = confusions(scores, targets, thresholds[name], vocabulary)
        parts.append(f"<h3>{html.escape(name)}</h3><p>{html.escape(notes[name], quote=False)}</p>")
        parts.append(_table(["label", "false positives", "most often beside", "times"], rows) if rows
                     else "<p>No false positives.</p>")
    if attention:
        parts.append("<h2>Attention on validation images</h2>")
        parts.append(f"<p>{html.escape(attention_note)}</p>")
        for index, uri in enumerate(attention):
            parts.append(_image(uri, f"attention grid {index}"))
    else:
        parts.append(f"<p>No attention maps on this page: {html.escape(attention_note, quote=False)}</p>")
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;font-size:13px}"
        "th{background:#f0f3f7}td.num{text-align:right;font-variant-numeric:tabular-nums}"
        "img{max-width:100%;border:1px solid #ddd}h2{margin-top:1.6em;border-bottom:1px solid #ddd}"
    )
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def write_report(path, *args, **kwargs):
    """`build_report(…)` written atomically to `path`."""
    write_text(path, build_report(*args, **kwargs))
