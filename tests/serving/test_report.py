"""`evaluate --report`: the page's parts against independent re-derivations (scikit-learn's
precision-recall curve, hand-counted false positives), and the page of a trained run: every
section present and every picture a PNG that decodes."""

import base64
import io
import re
import shutil

import numpy as np
from PIL import Image
from sklearn.metrics import precision_recall_curve as sklearn_pr_curve

from cma_tf.evaluate import evaluate_workdirs, write_html_report
from cma_tf.visualization.report import confusions, precision_recall_curve


def test_the_precision_recall_curve_is_sklearns():
    rng = np.random.default_rng(0)
    targets = rng.random(200) < 0.3
    scores = rng.random(200) + 0.5 * targets  # distinct scores: every cut is a threshold
    precision, recall = precision_recall_curve(scores, targets)
    want_precision, want_recall, thresholds = sklearn_pr_curve(targets, scores)
    # sklearn lists one point per threshold (low to high) plus the (P=1, R=0) end point
    ours = {(round(r, 12), round(p, 12)) for p, r in zip(precision, recall)}
    theirs = {(round(r, 12), round(p, 12)) for p, r in zip(want_precision[:-1], want_recall[:-1])}
    assert theirs <= ours


def test_confusions_count_false_positives_and_their_company():
    vocabulary = ["frisbee", "plate", "dog"]
    targets = np.array([[0, 1, 0], [0, 1, 1], [1, 0, 1], [0, 0, 1]])
    scores = np.array([[0.9, 0.8, 0.1], [0.7, 0.9, 0.8], [0.9, 0.2, 0.6], [0.2, 0.6, 0.9]])
    rows = confusions(scores, targets, np.full(3, 0.5), vocabulary)
    # frisbee predicted on images 0 and 1 where absent, both times beside plate; plate on image 3 beside dog
    assert rows == [("frisbee", 2, "plate", 2), ("plate", 1, "dog", 1)]


def test_the_report_of_a_trained_run(image_workdir, tmp_path):
    predictions = {}
    rows, keys, runs = evaluate_workdirs([image_workdir], ["tiny"], same_labels=True, predictions=predictions)
    path = write_html_report(str(tmp_path / "report"), [image_workdir], ["tiny"], "final", rows, keys, runs, predictions)
    page = open(path, encoding="utf-8").read()
    for heading in ("Metrics (%)", "AP (%) per label", "Precision-recall curves", "Predicted where absent",
                    "Attention on validation images"):
        assert heading in page
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(uris) == 1 + 3  # the curves, and one attention grid per image
    for uri in uris:
        image = Image.open(io.BytesIO(base64.b64decode(uri)))
        assert image.format == "PNG" and image.size[0] > 200
    assert not re.findall(r'src="(?!data:)', page)  # nothing the page would have to fetch


def two_runs_on_three_labels():
    """Metrics and predictions of two runs whose per-label APs differ by +0.1, −0.3 and +0.2."""
    vocabulary = ["cat", "dog", "kite"]
    ap = {"A": [0.6, 0.5, 0.9], "B": [0.5, 0.8, 0.7]}
    metrics = {name: {"mAP": float(np.mean(values)), "AP_per_class": dict(zip(vocabulary, values))}
               for name, values in ap.items()}
    rng = np.random.default_rng(1)
    targets = (rng.random((40, 3)) < 0.4).astype(np.int64)
    predictions = {name: (rng.random((40, 3)), targets) for name in ap}
    return metrics, predictions, vocabulary


def test_the_per_label_heading_says_the_table_is_sorted_by_the_size_of_the_difference():
    from cma_tf.visualization.report import build_report

    metrics, predictions, vocabulary = two_runs_on_three_labels()
    page = build_report(metrics, ["mAP"], predictions, vocabulary, {n: np.full(3, 0.5) for n in metrics}, "t")
    heading = re.search(r"<h2>(AP \(%\) per label[^<]*)</h2>", page).group(1)
    labels = re.findall(r"<tr><td class=\"\">(\w+)</td>", page.split(heading, 1)[1])[:3]
    # |A − B| = 0.1, 0.3, 0.2: dog, kite, cat; signed, kite (+0.2) would come before cat and dog
    assert labels == ["dog", "kite", "cat"]
    assert "size of the difference" in heading, heading


def test_the_false_positive_tables_say_which_thresholds_each_run_used(image_workdir, tmp_path):
    plain, calibrated = str(tmp_path / "plain"), str(tmp_path / "calibrated")
    shutil.copytree(image_workdir, plain)
    shutil.copytree(image_workdir, calibrated)
    evaluate_workdirs([calibrated], ["calibrated"], calibrate_split="train")
    predictions = {}
    names = ["plain", "calibrated"]
    rows, keys, runs = evaluate_workdirs([plain, calibrated], names, same_labels=True, predictions=predictions)
    path = write_html_report(str(tmp_path / "report"), [plain, calibrated], names, "final", rows, keys, runs,
                             predictions)
    page = open(path, encoding="utf-8").read()
    section = page.split("Predicted where absent", 1)[1]
    assert re.search(r"<h3>plain</h3><p>At 0\.5 for every label \(not calibrated\)", section), section[:600]
    assert re.search(r"<h3>calibrated</h3><p>At its per-label thresholds chosen on split 'train'", section)
    assert "counts of runs at different thresholds do not compare" in section
