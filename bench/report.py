"""What every benchmark does last: write its figures as JSON and print them as the last line."""

import json
import os


def write_report(result, json_out):
    """Writes `result` to `json_out` (indented) and prints it as one JSON line on stdout."""
    os.makedirs(os.path.dirname(json_out) or ".", exist_ok=True)
    with open(json_out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result))
