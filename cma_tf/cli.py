"""Shared bits of the `python -m cma_tf.<verb>` command lines."""

import os
import sys

from cma_tf.errors import ConfigError, DataError

USER_ERRORS = (ConfigError, DataError, FileNotFoundError, FileExistsError)


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


def config_value(config_flag):
    """The parsed `--config`; a missing or broken config file is reported as one line (exit 2)."""
    try:
        config = config_flag.value
        config.to_dict()  # ml_collections loads the file lazily; force it here
        return config
    except (OSError, SyntaxError, AttributeError, TypeError, KeyError) as error:
        message = " ".join(str(error).split())
        print(f"error: cannot load --config: {message}", file=sys.stderr)
        sys.exit(2)


def run(main):
    """`absl.app.run(main)` with quiet TensorFlow logs; a config file that does not even parse
    (a SyntaxError raised while absl parses `--config`) is reported as one line."""
    quiet_tensorflow_logs()
    from absl import app

    try:
        app.run(main)
    except SyntaxError as error:
        print(f"error: cannot load --config: {error.filename}:{error.lineno}: {error.msg}", file=sys.stderr)
        sys.exit(2)
