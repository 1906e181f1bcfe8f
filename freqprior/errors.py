"""Errors that are the user's to fix: main.py prints their message as one line, no traceback."""


class UserError(Exception):
  """A mistake in the config, the flags, the files or the workdir; the message names the fix."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work (or a checkpoint that does not fit the config)."""


class MissingError(UserError, FileNotFoundError):
  """A file, dataset or checkpoint that is not where the config says."""


class WorkdirError(UserError, PermissionError):
  """A workdir that cannot be created or written."""
