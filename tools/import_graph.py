"""The import graph of `cma_tf`: each module, its layer and the `cma_tf` modules it imports
(at the top or inside a function), checked against the layering of docs/design.md §4.

    python tools/import_graph.py            # the listing, then the violations; exit 1 if any
    python tools/import_graph.py --check    # only the violations

Reads the source with `ast` (nothing is imported), so it runs without TensorFlow.
"""

import argparse
import ast
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cma_tf")

# Bottom to top. A module may import modules of lower layers, and of its own layer unless the
# layer is `independent` (then only of its own package): data code holds no model code, the
# metrics read numpy arrays, layers read tensors. Wherever it lives, a module that is a command
# (it has a `__main__` block or defines absl flags, e.g. the converters under data/convert/)
# is in the top layer: nothing of the library may import it.
LAYERS = (
    ("foundation", ("errors", "saving", "atomic", "architecture", "config_base", "config_schema", "registry", "schedules", "optimizers"), False),
    ("data, metrics, layers", ("data", "metrics", "layers"), True),
    ("model parts, data kinds and generated datasets", ("backbones", "graph", "heads", "losses", "kinds", "datasets"), False),
    ("models", ("models",), False),
    ("factory", ("factory",), False),
    ("training and serving", ("training", "serving", "visualization", "selection"), False),
    (
        "commands",
        ("cli", "train", "evaluate", "label_graph", "label_embeddings", "export", "predict",
         "segment_inference", "visualize", "pretrain", "yt8m_starter"),
        False,
    ),
)


def module_names(root=ROOT):
    """Every module of the package, as dotted names relative to `cma_tf` ("data.records")."""
    names = []
    for folder, _, files in os.walk(root):
        for file in files:
            if file.endswith(".py"):
                relative = os.path.relpath(os.path.join(folder, file), root)[:-3].replace(os.sep, ".")
                names.append(relative[: -len(".__init__")] if relative.endswith("__init__") else relative)
    return sorted(name for name in names if name)


def imports_of(name, modules, root=ROOT):
    """The package modules `name` imports (resolving `from cma_tf.x import y` to `x.y` when y is a module)."""
    path = source_path(name, root)
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for target in targets:
            if target == "cma_tf" or not target.startswith("cma_tf."):
                continue
            relative = target[len("cma_tf."):]
            if relative in modules:
                found.add(relative)
            elif ".".join(relative.split(".")[:-1]) in modules and isinstance(node, ast.ImportFrom):
                found.add(".".join(relative.split(".")[:-1]))
    # `from cma_tf.x import y` adds both x and x.y when y is a module: keep x.y only.
    return sorted(m for m in found if not any(other.startswith(m + ".") for other in found) or m == name)


def is_command(name, root=ROOT):
    """Whether the module runs as `python -m cma_tf.<name>` or defines command-line flags."""
    with open(source_path(name, root), encoding="utf-8") as f:
        source = f.read()
    return 'if __name__ == "__main__"' in source or "flags.DEFINE_" in source


def source_path(name, root=ROOT):
    path = os.path.join(root, *name.split("."))
    return os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"


COMMANDS = set()  # filled by import_graph()


def layer_of(name):
    """`(index, layer name, top-level package, independent)` of a module."""
    top = name.split(".")[0]
    if name in COMMANDS:
        return len(LAYERS) - 1, LAYERS[-1][0], top, False
    for index, (layer, packages, independent) in enumerate(LAYERS):
        if top in packages:
            return index, layer, top, independent
    raise KeyError(f"cma_tf.{name} is in no layer of tools/import_graph.py: add its package to LAYERS")


def violations(graph):
    found = []
    for name, imported in graph.items():
        index, layer, top, independent = layer_of(name)
        for target in imported:
            target_index, target_layer, target_top, _ = layer_of(target)
            if target_index > index or (target_index == index and independent and target_top != top):
                found.append(f"cma_tf.{name} ({layer}) imports cma_tf.{target} ({target_layer})")
    return found


def import_graph(root=ROOT):
    modules = set(module_names(root))
    COMMANDS.update(name for name in modules if is_command(name, root))
    return {name: [m for m in imports_of(name, modules, root) if m != name] for name in sorted(modules)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="print only the violations")
    args = parser.parse_args()
    graph = import_graph()
    if not args.check:
        for index, (layer, packages, independent) in enumerate(LAYERS):
            print(f"## layer {index}: {layer}{' (packages independent of each other)' if independent else ''}")
            for name, imported in graph.items():
                if layer_of(name)[0] == index:
                    print(f"cma_tf.{name} -> {', '.join(imported) or '(nothing of cma_tf)'}")
            print()
    problems = violations(graph)
    print(f"{len(problems)} imports from a lower layer to a higher one" + (":" if problems else ""))
    for problem in problems:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
