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


def test_report_on_runs_of_other_labels_says_plainly_what_to_run(image_workdir, image_data, tmp_path):
    """Two runs on label sets that differ at one name: the refusal is about --report (the flag
    given), names where the labels part and the commands that do work: one report per run."""
    import json
    import subprocess
    import sys

    from tests.test_cli import ROOT

    other_data, other_run = tmp_path / "data", tmp_path / "other"
    shutil.copytree(image_data, other_data)
    shutil.copytree(image_workdir, other_run)
    labels = (other_data / "labels.txt").read_text().splitlines()
    renamed = labels[:2] + ["zebra"] + labels[3:]
    (other_data / "labels.txt").write_text("\n".join(renamed) + "\n")
    (other_run / "labels.txt").write_text("\n".join(renamed) + "\n")
    config = json.loads((other_run / "config.json").read_text())
    config["data"]["data_dir"] = str(other_data)
    (other_run / "config.json").write_text(json.dumps(config))
    report = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "cma_tf.evaluate", f"--workdirs={image_workdir},{other_run}", "--names=first,other",
         f"--report={report}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(__import__("os").environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --report compares each label's AP across the workdirs"), line
    assert f"line 3: {labels[2]!r} vs 'zebra'" in line
    assert (f"run one report per workdir: python -m cma_tf.evaluate --workdirs={image_workdir} --report={report}/first"
            f" and python -m cma_tf.evaluate --workdirs={other_run} --report={report}/other") in line
    assert not report.exists()
