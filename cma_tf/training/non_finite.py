"""Why a run's loss or a model's scores are NaN or infinite, when the data is the cause: the
one-line errors of training (`StopOnNonFiniteLoss`) and evaluation name the file and record
(`DataKind.non_finite_record`, a bounded scan run only after the failure)."""

from typing import Optional, Sequence

from cma_tf import factory
from cma_tf.errors import DataError

FIX = "fix or drop that record (predict marks such records valid=0)"


def non_finite_record(config, splits: Sequence[str]) -> Optional[str]:
    """The first record of `splits` whose inputs are not finite, in one line, or None."""
    kind = factory.data_kind(config)
    for split in splits:
        problem = kind.non_finite_record(config, factory.list_data_files(config, split))
        if problem:
            return problem
    return None


def non_finite_scores_error(config, split: str, model_name: str) -> DataError:
    """The error for NaN or infinite scores of `model_name` on `split`: the record whose features
    caused them, else the model itself."""
    problem = non_finite_record(config, [split])
    if problem:
        return DataError(f"{problem}: the scores of split '{split}' are not finite; {FIX}")
    return DataError(
        f"{model_name} gives NaN or infinite scores on split '{split}' although its records' features are "
        "finite: the model's weights are not finite (a diverged run); retrain it"
    )
