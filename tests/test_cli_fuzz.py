"""The `a2e` command against generated bad inputs: every one ends in exit 2, one stderr line, no traceback
and no file left behind (issue 16's breakages are among them). The CLI runs in-process (`a2e_jax.cli.main`),
so a case costs milliseconds instead of a JAX start-up."""

import contextlib
import io
import os
import struct

import numpy as np
import pygltflib
import pytest
import scipy.io

from a2e_jax.cli import main
from a2e_jax.core import channels
from a2e_jax.formats.sequence import CoeffSequence, save_npz

FRAMES = 12
CONFIG = "configs/synthetic.py:tiny"


def _run(argv) -> tuple[int | str, str]:
  """(exit status, or the escaped exception's line: a traceback the user would see; stderr)."""
  err, out = io.StringIO(), io.StringIO()
  try:
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
      status = main([str(a) for a in argv])
  except BaseException as e:  # noqa: BLE001 - a traceback is what this test looks for.
    status = f"Traceback: {type(e).__name__}: {str(e)[:200]}"
  return status, err.getvalue()


def _listing(folder) -> set:
  return {os.path.relpath(os.path.join(d, n), folder) for d, dirs, files in os.walk(folder)
          for n in files + dirs}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
  """Valid coefficient files of every format (and a folder to corrupt copies in)."""
  folder = tmp_path_factory.mktemp("inputs")
  rng = np.random.default_rng(0)
  seq = CoeffSequence(coeffs=rng.uniform(0, 0.5, (FRAMES, 53)).astype(np.float32),
                      channel_names=channels.ICT_CHANNELS, fps=25.0, model="builtin",
                      pose=np.zeros((FRAMES, 6), np.float32))
  save_npz(str(folder / "ok.npz"), seq)
  for to, ext in (("arkit-csv", "csv"), ("glb", "glb")):
    status, err = _run(["export", folder / "ok.npz", "--to", to, "--out", folder / f"ok.{ext}"])
    assert status == 0, err
  scipy.io.savemat(folder / "ok.mat", {"coeff_3dmm": rng.normal(0, 0.3, (FRAMES, 70))})
  np.save(folder / "ok.npy", rng.normal(0, 0.3, (FRAMES, 73)).astype(np.float32))
  return folder


def _glb_weights_offset(path) -> tuple[int, int]:
  """(byte offset in the file, count) of the morph-weight animation values of a .glb."""
  gltf = pygltflib.GLTF2().load(str(path))
  sampler = gltf.animations[0].samplers[next(c.sampler for c in gltf.animations[0].channels
                                             if c.target.path == "weights")]
  accessor = gltf.accessors[sampler.output]
  view = gltf.bufferViews[accessor.bufferView]
  raw = open(path, "rb").read()
  json_length = struct.unpack("<I", raw[12:16])[0]
  blob_start = 12 + 8 + json_length + 8
  return blob_start + (view.byteOffset or 0) + (accessor.byteOffset or 0), accessor.count


def _poison(inputs, fmt: str, value: float, rng) -> str:
  """A copy of ok.<fmt> with `value` at a random frame and column."""
  frame, path = int(rng.integers(FRAMES)), str(inputs / f"bad_{fmt}_{value}_{rng.integers(1 << 30)}.{fmt}")
  if fmt == "npz":
    data = dict(np.load(inputs / "ok.npz"))
    data["coeffs"] = data["coeffs"].copy()
    data["coeffs"][frame, rng.integers(53)] = value
    np.savez(path, **data)
  elif fmt == "npy":
    array = np.load(inputs / "ok.npy")
    array[frame, rng.integers(73)] = value
    np.save(path, array)
  elif fmt == "mat":
    array = scipy.io.loadmat(inputs / "ok.mat")["coeff_3dmm"]
    array[frame, rng.integers(70)] = value
    scipy.io.savemat(path, {"coeff_3dmm": array})
  elif fmt == "csv":
    lines = open(inputs / "ok.csv").read().splitlines()
    cells = lines[1 + frame].split(",")
    cells[2 + int(rng.integers(52))] = repr(value)
    lines[1 + frame] = ",".join(cells)
    open(path, "w").write("\n".join(lines) + "\n")
  else:
    raw = bytearray(open(inputs / "ok.glb", "rb").read())
    start, count = _glb_weights_offset(inputs / "ok.glb")
    at = start + 4 * int(rng.integers(count))
    raw[at : at + 4] = struct.pack("<f", value)
    open(path, "wb").write(bytes(raw))
  return path


def _truncated(inputs, fmt: str, fraction: float) -> str:
  raw = open(inputs / f"ok.{fmt}", "rb").read()
  cut = int(len(raw) * fraction)
  if fmt == "csv":  # a cut at a line end leaves a shorter valid file: cut inside a line
    while raw[cut - 1 : cut] in (b"\n", b","):
      cut -= 1
  path = str(inputs / f"cut_{fraction}.{fmt}")
  open(path, "wb").write(raw[:cut])
  return path


def _manifest(inputs, out: str) -> str:
  path = inputs / f"manifest_{abs(hash(out))}.jsonl"
  path.write_text(f'{{"audio": "a.wav", "out": "{out}"}}\n')
  return str(path)


def _cases(inputs) -> list[tuple[str, list]]:
  """(name, argv) of every bad input; `{out}` in an argv is the case's empty output folder."""
  rng = np.random.default_rng(16)
  cases = []
  for fmt in ("npz", "csv", "glb", "mat", "npy"):
    for value in (np.nan, np.inf, -np.inf, 1e30, -3e5):
      bad = _poison(inputs, fmt, value, rng)
      cases.append((f"{fmt} holding {value}", ["export", bad, "--to", "npz", "--out", "{out}/x.npz"]))
      cases.append((f"{fmt} holding {value}, render", ["render", bad, "--out", "{out}/x.mp4"]))
    for fraction in (0.0, 0.3, 0.7, 0.97):
      cut = _truncated(inputs, fmt, fraction)
      cases.append((f"{fmt} cut at {fraction}", ["export", cut, "--to", "arkit-csv", "--out", "{out}/x.csv"]))
    noise = str(inputs / f"noise.{fmt}")
    open(noise, "wb").write(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    cases.append((f"random bytes as {fmt}", ["export", noise, "--to", "npz", "--out", "{out}/x.npz"]))
  for name, entries in (("fps nan", {"fps": np.array(np.nan)}), ("fps 0", {"fps": np.array(0.0)}),
                        ("fps text", {"fps": np.array("fast")}),
                        ("string coeffs", {"coeffs": np.full((FRAMES, 53), "a")}),
                        ("coeffs 1-d", {"coeffs": np.zeros(53, np.float32)}),
                        ("no format", {"format": np.array("other")})):
    data = dict(np.load(inputs / "ok.npz"))
    data.update(entries)
    path = str(inputs / f"{name.replace(' ', '_')}.npz")
    np.savez(path, **data)
    cases.append((f"npz with {name}", ["export", path, "--to", "npz", "--out", "{out}/x.npz"]))
  ok = str(inputs / "ok.npz")
  for fps in ("0", "-1", "nan", "inf", "1e9", "fast"):
    cases.append((f"--fps {fps}", ["export", ok, "--to", "npz", "--fps", fps, "--out", "{out}/x.npz"]))
  for size in ("0", "1", "15", "17", "100000", "-2"):
    cases.append((f"render --size {size}", ["render", ok, "--size", size, "--out", "{out}/x.mp4"]))
  cases += [
    ("render --batch 0", ["render", ok, "--batch", "0", "--out", "{out}/x.mp4"]),
    ("render --out not mp4", ["render", ok, "--out", "{out}/x.avi"]),
    ("render --out a folder", ["render", ok, "--out", "{out}/folder.mp4/"]),
    ("export --out a folder", ["export", ok, "--to", "npz", "--out", "{out}"]),
    ("export --out under a file", ["export", ok, "--to", "npz", "--out", f"{ok}/x.npz"]),
    ("export glb named .csv", ["export", ok, "--to", "glb", "--out", "{out}/x.csv"]),
    ("export npz named .mat", ["export", ok, "--to", "npz", "--out", "{out}/x.mat"]),
    ("export missing input", ["export", "{out}/none.npz", "--to", "npz", "--out", "{out}/x.npz"]),
    ("export unknown extension", ["export", ok[:-4] + ".xyz", "--to", "npz", "--out", "{out}/x.npz"]),
    ("models convert --num-id -3", ["models", "convert", "--from", "ict", "{out}", "--num-id", "-3",
                                    "--out", "{out}/m.npz"]),
    ("models convert --out not npz", ["models", "convert", "--from", "bfm", ok, "--out", "{out}/m.mat"]),
    ("models convert bad bfm", ["models", "convert", "--from", "bfm", ok, "--out", "{out}/m.npz"]),
    ("generate --size 0", ["generate", "--audio", "{out}/a.wav", "--size", "0", "--out", "{out}/gen"]),
    ("generate --size 100000", ["generate", "--audio", "{out}/a.wav", "--size", "100000", "--out", "{out}"]),
    ("generate --out a file", ["generate", "--audio", "{out}/a.wav", "--out", ok]),
    ("generate --chunk-frames -5", ["generate", "--audio", "{out}/a.wav", "--chunk-frames", "-5",
                                    "--out", "{out}"]),
    ("generate --overlap-frames 99", ["generate", "--audio", "{out}/a.wav", "--chunk-frames", "32",
                                      "--overlap-frames", "99", "--out", "{out}"]),
    ("generate --emotion happy=-1", ["generate", "--audio", "{out}/a.wav", "--emotion", "happy=-1", "--out",
                                     "{out}"]),
    ("generate --video not mp4", ["generate", "--audio", "{out}/a.wav", "--video", "{out}/v.avi",
                                  "--out", "{out}/g"]),
  ]
  train = ["train", "--config", CONFIG, "--workdir", "{out}/run", "--config.input=random"]
  for override in ("train.batch_size=0", "train.batch_size=-8", "train.batch_size=6", "train.steps=0",
                   "data.window_frames=-4", "data.window_frames=0", "checkpoint.keep=0", "checkpoint.every=0",
                   "checkpoint.best_mode=median", "eval.every=-1", "train.grad_accum_steps=0",
                   "data.pairs.fallback=bogus", "data.workers=-1", "train.nosuch=1", "nosuch.key=1",
                   "train.steps=many", "optim.learning_rate=fast", "mesh.data=3"):
    cases.append((f"train --config.{override}", [*train, f"--config.{override}"]))
  cases += [
    ("train unknown variant", ["train", "--config", "configs/synthetic.py:huge", "--workdir", "{out}/run"]),
    ("train missing config", ["train", "--config", "configs/none.py", "--workdir", "{out}/run"]),
    ("train bad override form", [*train, "--train.steps=3"]),
    ("eval without checkpoints", ["eval", "--checkpoint", "{out}/norun"]),
    *[(f"batch manifest with out {target!r}",
       ["generate", "--audio", _manifest(inputs, target), "--out", "{out}"])
      for target in ("../../x", "/tmp/a2e_escape", "~/x", "a/../../x", "")],
    ("unknown command", ["frobnicate"]),
    ("export without --to", ["export", ok, "--out", "{out}/x.npz"]),
  ]
  return cases


@pytest.mark.slow
def test_bad_inputs_end_in_one_line_exit_2_and_leave_nothing(inputs, tmp_path):
  cases = _cases(inputs)
  assert len(cases) >= 100
  before_inputs = _listing(inputs)
  failures = []
  for number, (name, argv) in enumerate(cases):
    out = tmp_path / f"case{number}"
    out.mkdir()
    status, err = _run([str(a).replace("{out}", str(out)) for a in argv])
    lines = err.strip().splitlines()
    left = _listing(out)
    one_line = len(lines) == 1 and lines[0].startswith("a2e: error: ") and "Traceback" not in err
    if status != 2 or not one_line or left:
      failures.append(f"{name}: status {status}, stderr {err.strip()!r}, left {sorted(left)}")
  assert _listing(inputs) == before_inputs
  assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(failures)
