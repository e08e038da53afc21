"""Loading `ml_collections` config files: `path.py[:variant]` plus `--config.a.b=value` overrides.

Config files define `get_config(arg=None)` returning a locked `ConfigDict`; `arg` picks a variant
(`tiny` for tests). Parsing goes through `ml_collections.config_flags`, so the override syntax and type
checks are exactly those of absl-based launchers (`launch/train.py`).
"""

import os

from absl import flags
from ml_collections import config_flags

from a2e_jax.core.errors import UserError


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()):
  """Returns the locked ConfigDict of `spec` (`configs/x.py:variant`) with overrides applied.

  `overrides` are strings like `--config.train.steps=10` (the leading `--` is optional).
  Raises UserError naming the file or key for a missing file, an unknown key or a wrong type.
  """
  path = spec.split(":", 1)[0]
  if not os.path.isfile(path):
    raise UserError(f"config file {path!r} not found; pass --config configs/<name>.py[:variant]")
  argv = ["a2e", f"--config={spec}"]
  for item in overrides:
    item = item if item.startswith("--") else "--" + item
    if not item.startswith("--config."):
      raise UserError(f"bad override {item!r}; write it as --config.<key>=<value>")
    argv.append(item)
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=True, sys_argv=argv)
  try:
    flag_values(argv)
    config = flag_values.config
    config.keys()  # A config file that failed to load is only reported on first access.
  except (KeyError, AttributeError) as e:
    # An unknown key: ml_collections raises either with just the key's name (quoted) as the message.
    key = str(e).strip("'\"")
    if not key.isidentifier():
      raise UserError(f"config {spec}: {' '.join(key.split())}") from None
    given = next((o for o in argv[2:] if f".{key}" in o.split("=")[0]), None)
    raise UserError(f"config {spec}: no key {key!r}" + (f" (in {given.split('=')[0]})" if given else "")
                    + f"; see {path} for the keys there are") from None
  except (flags.Error, TypeError, ValueError) as e:
    text = str(e).replace("\\n", "\n")
    if "Traceback (most recent call last)" in text:
      # The config file itself raised (e.g. an unknown variant): its last line is the error.
      text = next(line for line in reversed(text.splitlines()) if line.strip())
    message = " ".join(text.split()).strip("'\"")
    raise UserError(f"config {spec}: {message}") from None
  except Exception as e:  # noqa: BLE001 - an error inside the user's config file.
    raise UserError(f"config {spec} failed to load: {type(e).__name__}: {e}") from None
  return config


def split_config_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.x=y` arguments (returned second) from the others."""
  overrides = [a for a in argv if a.startswith("--config.")]
  rest = [a for a in argv if not a.startswith("--config.")]
  return rest, overrides
