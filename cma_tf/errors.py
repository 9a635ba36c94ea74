"""Errors that report a user's mistake (bad config, missing or malformed data); the CLIs print
them as one line, without a stack trace."""


class ConfigError(ValueError):
    """A config field is missing or has a value that cannot be built."""


class DataError(ValueError):
    """Input data is missing or malformed; the message names the file, record and field."""


class TrainingDivergedError(ConfigError):
    """The training loss became NaN or infinite: the config's recipe does not train this model."""


class WorkerLostError(ConfigError):
    """A peer of a multi-worker run stopped answering (killed, or its machine lost): not a
    mistake, but owed as one line naming the worker and where re-running resumes."""
