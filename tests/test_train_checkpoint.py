"""Checkpoints: restore onto other meshes and device counts, keep latest + best, fallback from damaged
checkpoints (files, arrays, NaN; tools/checkpoint_damage.py garbles data files), `restore_params`."""

import json
import os
import shutil

import jax
import ml_collections
import numpy as np
import pytest
import train_standin as standin
from jax.sharding import PartitionSpec as P

from a2e_jax.core import run_dir
from a2e_jax.core.errors import UserError
from a2e_jax.tasks.random_batches import RandomBatches
from a2e_jax.train import checkpoint, sharding, step
from a2e_jax.train import state as state_lib

pytestmark = pytest.mark.slow  # compiles train states on several meshes and writes checkpoints


def _mesh(shape, devices=None):
  cfg = ml_collections.ConfigDict(dict(zip(sharding.MESH_AXES, shape)))
  return sharding.make_mesh(cfg, devices)


class _Setup:
  """The stand-in's optimizer, shardings and batches on one mesh."""

  def __init__(self, mesh):
    self.mesh = mesh
    self.module = standin.StandIn()
    self.tx, self.schedule = state_lib.make_optimizer(state_lib.optim_config(), 20)
    self.init = lambda rng: self.module.init(rng, standin.example_view(2))
    self.rng = jax.random.key(0)
    self.shardings = state_lib.state_shardings(self.init, self.tx, self.rng, mesh)
    self.batches = RandomBatches(8, standin.FRAMES, standin.COEFFS, mesh, seed=7)
    self.train_step = step.make_train_step(standin.loss_fn(self.module), self.tx, self.schedule,
                                           self.shardings, mesh)

  def fresh_state(self):
    return state_lib.create_state(self.init, self.tx, self.rng, self.shardings, self.mesh)

  def abstract(self):
    return state_lib.abstract_state(self.init, self.tx, self.rng, self.shardings)

  def train(self, state, steps):
    for _ in range(steps):
      state, _ = self.train_step(state, next(self.batches), jax.random.key(1), None)
    return state


def _host(tree):
  return jax.tree.map(np.asarray, tree)


def _assert_equal_trees(a, b):
  for x, y in zip(jax.tree.leaves(_host(a)), jax.tree.leaves(_host(b))):
    np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def saved_on_8(tmp_path_factory):
  """A workdir with a checkpoint at step 3, saved from a 1x8x1 (fsdp) mesh."""
  workdir = tmp_path_factory.mktemp("ckpt8")
  setup = _Setup(_mesh((1, 8, 1)))
  state = setup.train(setup.fresh_state(), 3)
  ckpt = checkpoint.Checkpointer(workdir)
  ckpt.save(state, setup.batches)
  ckpt.close()
  return workdir, _host(state), setup.batches.get_state()


@pytest.mark.parametrize("shape, num_devices", [((1, 1, 1), 1), ((2, 2, 2), 8), ((4, 1, 1), 4)])
def test_checkpoint_from_8_devices_restores_on_other_meshes(saved_on_8, shape, num_devices):
  workdir, saved, data_state = saved_on_8
  setup = _Setup(_mesh(shape, jax.devices()[:num_devices]))
  ckpt = checkpoint.Checkpointer(workdir)
  state = ckpt.restore(setup.abstract(), setup.batches)
  ckpt.close()
  assert int(state.step) == 3
  _assert_equal_trees(state, saved)
  assert setup.batches.get_state() == data_state == {"step": 3}
  kernel = state.params["up"]["kernel"]
  assert kernel.sharding.mesh.devices.size == num_devices
  assert kernel.sharding.spec == setup.shardings.params["up"]["kernel"].spec
  if shape == (2, 2, 2):
    assert kernel.sharding.spec == P("fsdp", "model") and kernel.addressable_shards[0].data.shape == (16, 32)


def test_restore_params_lands_on_one_device_whatever_saved_it(saved_on_8):
  workdir, saved, _ = saved_on_8
  params = run_dir.restore_params(workdir, "latest")
  _assert_equal_trees(params, saved.params)
  leaf = params["up"]["kernel"]
  assert isinstance(leaf.sharding, jax.sharding.SingleDeviceSharding)
  with pytest.raises(UserError, match="no checkpoint 7"):
    run_dir.restore_params(workdir, 7)


def test_restore_params_without_checkpoints_is_a_user_error(tmp_path):
  with pytest.raises(UserError, match="no checkpoints"):
    run_dir.restore_params(tmp_path)


def test_keeps_the_latest_and_the_best(tmp_path):
  setup = _Setup(_mesh((8, 1, 1)))
  state = setup.fresh_state()
  ckpt = checkpoint.Checkpointer(tmp_path, keep=2, best_metric="eval/loss", best_mode="min")
  scores = (5.0, 1.0, 4.0, None, 3.0, None)  # for steps 1..6: step 2 is the best; 4 and 6 have no eval
  for score in scores:  # step k saves the initial params + k
    state = state.replace(step=state.step + 1, params=jax.tree.map(lambda x: x + 1, state.params))
    ckpt.save(state, setup.batches, metrics=None if score is None else {"eval/loss": score})
  ckpt.wait()
  assert ckpt.all_steps() == [2, 5, 6]
  assert ckpt.best_step() == 2
  ckpt.close()
  # A step cut off mid-save keeps Orbax's temporary name; readers must not take it for the latest.
  shutil.copytree(tmp_path / "checkpoints" / "6", tmp_path / "checkpoints" / "9.orbax-checkpoint-tmp-1")
  initial = _host(setup.fresh_state().params)

  def restored(step="best", mode="min"):
    (tmp_path / "config.json").write_text(json.dumps({"checkpoint": {"best_metric": "eval/loss",
                                                                     "best_mode": mode}}))
    offsets = [np.asarray(a) - b for a, b in zip(jax.tree.leaves(run_dir.restore_params(tmp_path, step)),
                                                 jax.tree.leaves(initial))]
    assert all(np.allclose(o, o.flat[0]) for o in offsets)
    return round(float(offsets[0].flat[0]))

  assert restored() == 2  # "best" by default: step 2's eval/loss 1.0
  assert restored(mode="max") == 5  # of the kept steps with an eval/loss, step 5's 3.0 is the highest
  assert restored("latest") == 6
  assert restored(5) == 5


def _corrupt(step_dir):
  """Overwrites the array data of a checkpoint with garbage, as a half-written file system would."""
  files = [os.path.join(d, f) for d, _, fs in os.walk(step_dir / "params") for f in fs]
  assert files
  for path in files:
    with open(path, "wb") as f:
      f.write(b"\x00garbage")


def test_corrupt_latest_falls_back_to_the_previous_with_a_warning(tmp_path):
  setup = _Setup(_mesh((2, 4, 1)))
  state = setup.fresh_state()
  ckpt = checkpoint.Checkpointer(tmp_path, keep=3)
  states = {}
  for steps in (1, 1):
    state = setup.train(state, steps)
    states[int(state.step)] = _host(state)
    ckpt.save(state, setup.batches)
  ckpt.close()
  _corrupt(tmp_path / "checkpoints" / "2")

  ckpt = checkpoint.Checkpointer(tmp_path, keep=3)
  with pytest.warns(UserWarning, match=r"checkpoints/2 is damaged \(params/\S+ has 8 bytes, \d+ were "
                                       r"written\); moved it to \S+/corrupt_checkpoints/2 and resumed from "
                                       r"step 1$"):
    restored = ckpt.restore(setup.abstract(), setup.batches)
  assert int(restored.step) == 1
  _assert_equal_trees(restored, states[1])
  assert setup.batches.get_state() == {"step": 1}
  assert (tmp_path / "corrupt_checkpoints" / "2").is_dir()
  assert ckpt.all_steps() == [1]
  # Training goes on and saves step 2 again.
  state = setup.train(restored, 1)
  ckpt.save(state, setup.batches)
  ckpt.close()
  assert checkpoint.Checkpointer(tmp_path).all_steps() == [1, 2]


def test_no_readable_checkpoint_is_a_user_error(tmp_path):
  setup = _Setup(_mesh((8, 1, 1)))
  ckpt = checkpoint.Checkpointer(tmp_path)
  ckpt.save(setup.fresh_state().replace(step=jax.numpy.int32(1)), setup.batches)
  ckpt.close()
  _corrupt(tmp_path / "checkpoints" / "1")
  ckpt = checkpoint.Checkpointer(tmp_path)
  with pytest.raises(UserError, match=r"no intact checkpoint in \S+ \(step 1: params/\S+ has 8 bytes"):
    ckpt.restore(setup.abstract(), setup.batches)
  assert (tmp_path / "checkpoints" / "1").is_dir()  # nothing is moved when nothing could be restored


def _save_two(tmp_path, setup, second=None):
  """Checkpoints at steps 1 and 2 (`second(state)` replaces step 2's state); returns step 1's state."""
  state = setup.train(setup.fresh_state(), 1)
  ckpt = checkpoint.Checkpointer(tmp_path, keep=3)
  ckpt.save(state, setup.batches)
  first = _host(state)
  ckpt.save(second(state) if second else setup.train(state, 1), setup.batches)
  ckpt.close()
  return first


def _restore_warns(tmp_path, setup, pattern):
  ckpt = checkpoint.Checkpointer(tmp_path, keep=3)
  with pytest.warns(UserWarning, match=pattern) as caught:
    restored = ckpt.restore(setup.abstract(), setup.batches)
  ckpt.close()
  assert len(caught) == 1
  return restored


def test_changed_array_bytes_are_found_by_the_checksums_without_the_file_list(tmp_path):
  setup = _Setup(_mesh((8, 1, 1)))
  first = _save_two(tmp_path, setup)
  step_dir = tmp_path / "checkpoints" / "2"
  (step_dir / "files.json").unlink()  # as if the run died before the step's file list was written
  data = max((p for p in (step_dir / "train").rglob("*") if p.is_file() and p.parent.name == "d"),
             key=lambda p: p.stat().st_size)
  raw = bytearray(data.read_bytes())
  raw[len(raw) // 2] ^= 0x01  # one flipped bit in the optimizer state's array bytes
  data.write_bytes(bytes(raw))
  pattern = r"checkpoints/2 is damaged \(train\S+ differ from their checksums"
  restored = _restore_warns(tmp_path, setup, pattern)
  _assert_equal_trees(restored, first)
  assert (tmp_path / "corrupt_checkpoints" / "2").is_dir()


def test_a_saved_nan_parameter_fails_the_finite_check(tmp_path):
  setup = _Setup(_mesh((8, 1, 1)))

  def poisoned(state):
    params = jax.tree.map(lambda x: x, state.params)
    params["up"]["kernel"] = params["up"]["kernel"].at[0, 0].set(np.nan)
    return state.replace(step=state.step + 1, params=params)

  first = _save_two(tmp_path, setup, poisoned)
  with pytest.raises(UserError, match=r"checkpoints/2 is damaged \(params\['up'\]\['kernel'\] hold NaN or "
                                      r"inf\); pass another --step \(steps: 1\)"):
    run_dir.restore_params(tmp_path, "latest")
  restored = _restore_warns(tmp_path, setup, r"params\['up'\]\['kernel'\] hold NaN or inf")
  _assert_equal_trees(restored, first)


def test_garbled_params_data_is_detected_and_skipped(tmp_path):
  """tools/checkpoint_damage.py at a few places (the full run: 42 places, docs/training.md)."""
  from conftest import tool_module

  results = tool_module("checkpoint_damage").run_trials(places=2, bit_flips=1, seed=3)
  for key in ("garble_with_file_list", "garble_without_file_list", "bit_flip_with_file_list",
              "bit_flip_without_file_list"):
    assert results[key]["detected"] == results[key]["trials"] > 0, (key, results["trials"])
  assert all(t["eval_refuses"] for t in results["trials"] if t["kind"] == "garble")


def test_checkpoints_without_checksums_still_restore(tmp_path):
  """Checkpoints written before the integrity records: only the finite check applies."""
  setup = _Setup(_mesh((8, 1, 1)))
  state = setup.train(setup.fresh_state(), 1)
  ckpt = checkpoint.Checkpointer(tmp_path)
  ckpt.save(state, setup.batches)
  ckpt.close()
  step_dir = tmp_path / "checkpoints" / "1"
  (step_dir / "files.json").unlink()
  shutil.rmtree(step_dir / "integrity")
  ckpt = checkpoint.Checkpointer(tmp_path)
  _assert_equal_trees(ckpt.restore(setup.abstract(), setup.batches), _host(state))
  ckpt.close()
  _assert_equal_trees(run_dir.restore_params(tmp_path, 1), _host(state).params)


def test_a_changed_input_setting_is_one_line_and_reset_state_keeps_the_trained_state(tmp_path):
  import fake_clips

  from a2e_jax.data import align, pipeline

  clips = fake_clips.make_clips(sentences=2)
  index = align.build_pair_index(clips)
  setup = _Setup(_mesh((8, 1, 1)))

  def batches(batch_size, **data):
    cfg = pipeline.data_config()
    cfg.update(data)
    return pipeline.make_batch_iterator(cfg, "train", batch_size, setup.mesh, seed=1, source=clips,
                                        index=index)

  saved_batches = batches(8)
  for _ in range(3):
    next(saved_batches)
  state = setup.train(setup.fresh_state(), 1)
  ckpt = checkpoint.Checkpointer(tmp_path)
  ckpt.save(state, saved_batches)
  ckpt.close()
  saved = _host(state)

  ckpt = checkpoint.Checkpointer(tmp_path)
  faster = batches(8, prefetch=1, read_threads=1)  # a speed setting: resumes
  _assert_equal_trees(ckpt.restore(setup.abstract(), faster), saved)
  assert faster.get_state()["step"] == 3
  with pytest.raises(pipeline.StateMismatchError, match=r"train.batch_size=8, now 16; .*reset_state=True"):
    ckpt.restore(setup.abstract(), batches(16))
  assert ckpt.all_steps() == [1] and not (tmp_path / "corrupt_checkpoints").exists()
  bigger = batches(16)
  _assert_equal_trees(ckpt.restore(setup.abstract(), bigger, reset_data_state=True), saved)
  assert bigger.get_state() == {"step": 3, "settings": batches(16).get_state()["settings"]}
  ckpt.close()
