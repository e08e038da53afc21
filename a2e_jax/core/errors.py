"""Errors a user can cause.

A `UserError` carries one line that names the thing (file, key, flag) and the fix. The `a2e` command
prints it on stderr and exits with status 2, without a traceback. Bugs raise anything else and keep
their traceback.
"""


class UserError(Exception):
  """A mistake in the user's input: a bad file, flag, config value or shape."""

