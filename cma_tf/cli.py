"""Shared bits of the `python -m cma_tf.<verb>` command lines."""

import os
import sys

from cma_tf.errors import ConfigError, DataError

USER_ERRORS = (ConfigError, DataError, FileNotFoundError)


def quiet_tensorflow_logs():
    """Hides TensorFlow's C++ start-up chatter unless the user asked for it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def run_reporting_user_errors(function, *args, **kwargs):
    """Calls `function`; a user's mistake is printed as one line and exits with status 2."""
    try:
        return function(*args, **kwargs)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
