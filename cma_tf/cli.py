"""Shared bits of the `python -m cma_tf.<verb>` command lines."""

import os
import sys
import tempfile
import traceback

from absl import flags
from ml_collections import config_flags

from cma_tf.errors import ConfigError, DataError

USER_ERRORS = (ConfigError, DataError, FileNotFoundError, FileExistsError)
# What TensorFlow prints on import on a machine without a GPU: nothing a user can act on.
STARTUP_CHATTER = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "Unable to register cu",
    "computation placer already registered",
)
INTERRUPTED_EXIT_STATUS = 130


NONE_WORDS = ("none", "null")


class _NoneOrNumberParser:
    """`--config.<field>=None` for an int or float field: None (the default of a placeholder
    such as train.steps_per_epoch or model.feature_channels, which a config may have set);
    anything else as absl parses that number. ml_collections has no None for numbers, and a
    field that cannot take None is refused by the config schema (`config_schema`), one line."""

    def parse(self, argument):
        if isinstance(argument, str) and argument.strip().lower() in NONE_WORDS:
            return None
        return super().parse(argument)


class NoneOrIntegerParser(_NoneOrNumberParser, flags.IntegerParser):
    pass


class NoneOrFloatParser(_NoneOrNumberParser, flags.FloatParser):
    pass


# Every command imports this module before absl parses its flags.
config_flags.register_flag_parser_for_type(int, NoneOrIntegerParser())
config_flags.register_flag_parser_for_type(float, NoneOrFloatParser())


def quiet_tensorflow_logs():
    """Hides TensorFlow's C++ start-up chatter unless the user asked for it (`TF_CPP_MIN_LOG_LEVEL`
    set already wins). Without an NVIDIA driver level 3 also hides the "failed call to cuInit:
    CUDA error (303)" line, which is only TensorFlow looking for a GPU; with one, level 2 keeps
    real GPU errors visible."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if os.path.exists("/proc/driver/nvidia") else "3")


def import_tensorflow_quietly():
    """Imports TensorFlow with its import-time log lines (written before its log level is read)
    dropped; any other line it prints is passed on, and everything if the import fails."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        import tensorflow  # noqa: F401

        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        failed = False
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            failed = True
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = lines if failed else [line for line in lines if not any(c in line for c in STARTUP_CHATTER)]
            sys.stderr.write("".join(kept))


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


def command_line_overrides(config_flag, flag_fields=()):
    """`{dotted field: value}` given on a command line for `training.workdir.evaluation_config`:
    the `--config.<field>=…` overrides (when `--config` was given; its file's own values are not
    used) and the shortcut flags of `flag_fields` (`(flag name, field)` pairs) that were set; a
    `UsageError` if both give one field different values. A value out of its field's range
    (`config_schema`) is one line, exit 2."""
    from absl import app, flags
    from ml_collections import config_flags

    from cma_tf import config_schema

    overrides = {}
    if flags.FLAGS[config_flag.name].present:
        config_value(config_flag)  # a missing or broken file is one line (exit 2)
        overrides.update(config_flags.get_override_values(flags.FLAGS[config_flag.name]))
    for flag_name, field in flag_fields:
        value = flags.FLAGS[flag_name].value
        if value is None:
            continue
        if field in overrides and overrides[field] != value:
            raise app.UsageError(f"--{flag_name}={value} and --config.{field}={overrides[field]} disagree")
        overrides[field] = value
    run_reporting_user_errors(config_schema.check_values, overrides)
    return overrides


def _config_override(error):
    """The `--config.…` argument a flag-parsing error is about, or None if it did not come from
    parsing a config override."""
    frames = traceback.extract_tb(error.__traceback__)
    if not any("config_flags" in frame.filename for frame in frames):
        return None
    overrides = [arg for arg in sys.argv[1:] if arg.startswith("--config.")]
    message = str(error)
    for arg in overrides:
        field = arg.split("=", 1)[0].rsplit(".", 1)[-1]
        if repr(field) in message or field in message:
            return arg
    return overrides[-1] if overrides else "--config"


def run(main, interrupted_hint="run the same command again to resume where it stopped"):
    """`absl.app.run(main)` with quiet TensorFlow logs, and these as one line each:
    a config file that does not parse, a `--config.<field>` override naming no field or with a
    value of the wrong type (exit 2), and Ctrl-C (exit 130, with `interrupted_hint`)."""
    quiet_tensorflow_logs()
    import_tensorflow_quietly()
    from absl import app

    try:
        app.run(main)
    except SyntaxError as error:
        print(f"error: cannot load --config: {error.filename}:{error.lineno}: {error.msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted_hint}", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_STATUS)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        override = _config_override(error)
        if override is None:
            raise
        message = " ".join(str(error).replace("\\n", " ").replace("\n", " ").split())
        if "Did you mean" in message:
            field = override.split("=", 1)[0][len("--config."):]
            message = f"no such field {field}. " + message[message.index("Did you mean"):].rstrip("'\"")
        print(
            f"error: {override}: {message} (the fields and their defaults are listed in cma_tf/config_base.py "
            "and the --config file)",
            file=sys.stderr,
        )
        sys.exit(2)


def run_flag_command(define_flags, run_from_flags, **run_options):
    """`run` (with `run_options`) for a command whose flags `define_flags()` defines (so importing
    its module defines none) and `run_from_flags(flags.FLAGS)` carries out: no positional
    arguments; a user error is one line (`run_reporting_user_errors`)."""
    from absl import app

    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
        run_reporting_user_errors(run_from_flags, flags.FLAGS)

    define_flags()
    run(main, **run_options)
