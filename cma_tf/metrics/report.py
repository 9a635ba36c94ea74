"""Metric tables for people: Markdown rows of percentages, one row per model."""


def format_metrics_table(rows, keys):
    """A Markdown table: `rows` maps a model name to its metrics dict (fractions → percent), one
    column per key (a data kind's `summary_keys` or `full_keys`)."""
    header = "| model | " + " | ".join(keys) + " |"
    rule = "|---|" + "---:|" * len(keys)
    lines = [header, rule]
    for name, metrics in rows.items():
        cells = [f"{100 * metrics[key]:.1f}" if key in metrics else "—" for key in keys]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_per_class_table(label_names, rows):
    """A Markdown table of per-class AP (%): one row per label, one column per model.

    `rows` maps a model name to a sequence of `N` APs (NaN for labels without positives).
    """
    models = list(rows)
    lines = ["| label | " + " | ".join(models) + " |", "|---|" + "---:|" * len(models)]
    for index, name in enumerate(label_names):
        cells = []
        for model in models:
            value = rows[model][index]
            cells.append("—" if value != value else f"{100 * value:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
