"""Metric tables for people: Markdown rows of percentages, one row per model."""

SUMMARY_KEYS = ("mAP", "CF1", "OF1")
FULL_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP_top3", "CR_top3", "CF1_top3", "OP_top3", "OR_top3", "OF1_top3")


def format_metrics_table(rows, keys=SUMMARY_KEYS):
    """A Markdown table: `rows` maps a model name to its metrics dict (fractions → percent)."""
    header = "| model | " + " | ".join(keys) + " |"
    rule = "|---|" + "---:|" * len(keys)
    lines = [header, rule]
    for name, metrics in rows.items():
        cells = [f"{100 * metrics[key]:.1f}" if key in metrics else "—" for key in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
