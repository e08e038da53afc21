"""Public behaviour is pinned: every `a2e` command's flags (with their help, defaults and choices) and the
package's public Python names. A deliberate change updates the golden file:
  python tests/test_public_api.py > tests/golden/public_api.json
"""

import argparse
import inspect
import json
import pathlib
import sys

from a2e_jax import cli

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden" / "public_api.json"


def _jsonable(value):
  if isinstance(value, str | int | float | bool) or value is None:
    return value
  if isinstance(value, list | tuple):
    return [_jsonable(v) for v in value]
  return repr(value)


def _parser_spec(parser: argparse.ArgumentParser, path: str, out: dict) -> None:
  arguments, subcommands = [], {}
  for action in parser._actions:
    if isinstance(action, argparse._SubParsersAction):
      for name, sub in action.choices.items():
        subcommands[name] = sub
      continue
    arguments.append({
      "flags": list(action.option_strings) or [action.dest], "dest": action.dest,
      "nargs": _jsonable(action.nargs), "default": _jsonable(action.default),
      "choices": _jsonable(action.choices), "required": action.required, "help": action.help,
      "metavar": _jsonable(action.metavar),
    })
  out[path] = {"description": parser.description, "epilog": parser.epilog, "arguments": arguments,
               "subcommands": sorted(subcommands)}
  for name, sub in subcommands.items():
    _parser_spec(sub, f"{path} {name}", out)


def public_api() -> dict:
  """What the test pins: the command tree and the Python names users import."""
  import a2e_jax
  import a2e_jax.data.synth as synth
  import a2e_jax.face.builtin as builtin
  import a2e_jax.render as render
  import a2e_jax.vision as vision

  commands = {}
  _parser_spec(cli.build_parser(), "a2e", commands)
  return {
    "commands": commands,
    "a2e_jax.__all__": sorted(a2e_jax.__all__),
    "a2e_jax.generate": str(inspect.signature(a2e_jax.generate)),
    "a2e_jax.render.__all__": sorted(render.__all__),
    "a2e_jax.data.synth exports": sorted(synth._EXPORTS),
    "a2e_jax.face.builtin.__all__": sorted(builtin.__all__),
    "a2e_jax.vision.__all__": sorted(vision.__all__),
    "a2e_jax.vision signatures": {name: str(inspect.signature(getattr(vision, name)))
                                  for name in ("landmarks_from_images", "track", "Landmarker")},
    "a2e_jax.vision.FaceLandmarks": list(vision.FaceLandmarks._fields),
  }


def test_commands_and_python_names_are_unchanged():
  golden = json.loads(GOLDEN.read_text())
  current = json.loads(json.dumps(public_api()))
  for name in sorted(set(golden["commands"]) | set(current["commands"])):
    assert current["commands"].get(name) == golden["commands"].get(name), f"`{name}` changed"
  assert {k: v for k, v in current.items() if k != "commands"} == \
    {k: v for k, v in golden.items() if k != "commands"}


def test_every_help_prints(capsys):
  for name in public_api()["commands"]:
    try:
      cli.main([*name.split()[1:], "--help"])
    except SystemExit as e:
      assert e.code == 0, name
    assert f"usage: {name}" in capsys.readouterr().out


if __name__ == "__main__":
  json.dump(public_api(), sys.stdout, indent=1, ensure_ascii=False)
  print()
