"""The classifier of the class-wise heads (CMA, self-attention) on their per-class vectors:
`config.model.classifier` None or "dense" keeps Eq. 10's per-class linear classifier (the
paper's); "moe" takes a per-class mixture of experts of `moe_mixtures` experts
(`layers/mixture_of_experts.PerClassMixtureOfExperts`, docs/design.md §2.29)."""

from cma_tf.layers.cross_modality import PerClassClassifier
from cma_tf.layers.mixture_of_experts import PerClassMixtureOfExperts

PER_CLASS_CLASSIFIERS = ("dense", "moe")


def per_class_classifier(kind, num_classes, mixtures, dtype=None):
    """`PerClassClassifier` (None, "dense") or `PerClassMixtureOfExperts` ("moe"), named "classifier"."""
    if kind in (None, "dense"):
        return PerClassClassifier(num_classes, name="classifier", dtype=dtype)
    if kind == "moe":
        return PerClassMixtureOfExperts(num_classes, mixtures, name="classifier", dtype=dtype)
    raise ValueError(f"classifier: unknown {kind!r} ({', '.join(PER_CLASS_CLASSIFIERS)})")
