"""What every benchmark does: print its figures as Markdown tables, then write them as JSON and
print them as the last line."""

import json
import os


def write_report(result, json_out):
    """Writes `result` to `json_out` (indented) and prints it as one JSON line on stdout."""
    os.makedirs(os.path.dirname(json_out) or ".", exist_ok=True)
    with open(json_out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))


def print_table(headers, rows, align):
    """A Markdown table: `headers`, `rows` of already formatted cells, `align` one letter a
    column ("l" left, "r" right)."""
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join({"l": "---", "r": "---:"}[a] for a in align) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
