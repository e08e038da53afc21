"""The grain pipeline on 8 fake devices: layout, pairing, warps, determinism, resumption, shard layouts."""

import os
import subprocess
import sys

import fake_clips
import jax
import numpy as np
import pytest

from a2e_jax.core.errors import UserError
from a2e_jax.data import align, pipeline


def _mesh(shape=(4, 2, 1)):
  explicit = (jax.sharding.AxisType.Explicit,) * 3
  return jax.make_mesh(
    shape, ("data", "fsdp", "model"), axis_types=explicit, devices=jax.devices()[: np.prod(shape)]
  )


@pytest.fixture(scope="module")
def clips():
  return fake_clips.make_clips()


@pytest.fixture(scope="module")
def index(clips):
  return align.build_pair_index(clips)


def _host(batch):
  return jax.tree.map(np.asarray, batch)


def _take(iterator, n):
  return [_host(next(iterator)) for _ in range(n)]


def _equal(x, y):
  return all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)))


def test_layout_and_sharding(clips, index):
  cfg = pipeline.data_config()
  batch = next(pipeline.make_batch_iterator(cfg, "train", 16, _mesh(), source=clips, index=index))
  assert set(batch) == set(pipeline.VIEWS)
  view = batch["ab"]
  assert view["mel"].shape == (16, cfg.window_frames, 16, 80) and view["mel"].dtype == np.float32
  assert view["coeffs"].shape == (16, cfg.window_frames, fake_clips.K)
  assert view["eye"].shape == (16, cfg.window_frames, 4) and view["beta0"].shape == (16, fake_clips.K)
  assert view["mask"].shape == (16, cfg.window_frames) and view["emotion"].shape == (16,)
  assert view["mel"].sharding.spec[0] == ("data", "fsdp")
  assert len(view["mel"].addressable_shards) == 8 and view["mel"].addressable_shards[0].data.shape[0] == 2


def test_pairs_cross_emotions_and_warps_align_phones(clips, index):
  batch = _host(
    next(
      pipeline.make_batch_iterator(
        pipeline.data_config(), "train", 32, _mesh(), seed=1, source=clips, index=index
      )
    )
  )
  a, b, ab, ba = (batch[v] for v in pipeline.VIEWS)
  assert np.all(a["emotion"] != b["emotion"])
  assert np.array_equal(ab["emotion"], b["emotion"]) and np.array_equal(ba["emotion"], a["emotion"])
  assert np.array_equal(index.group[ab["clip"]], index.group[a["clip"]])
  assert np.array_equal(index.group[ba["clip"]], index.group[b["clip"]])
  assert np.array_equal(index.speaker[b["clip"]], index.speaker[a["clip"]])
  assert np.array_equal(ab["mask"], a["mask"])
  # Channel 0 of the fake coefficients is the phone being said: the warp must keep the phones in step.
  for x, y in ((a, ab), (b, ba)):
    agree = ((x["coeffs"][..., 0] == y["coeffs"][..., 0]) * x["mask"]).sum() / x["mask"].sum()
    assert agree > 0.85


def test_mel_windows_match_the_schema(clips, index):
  batch = _host(
    next(pipeline.make_batch_iterator(pipeline.data_config(), "train", 8, _mesh(), source=clips, index=index))
  )
  clip = clips[batch["a"]["clip"][0]]
  mel = np.asarray(clip["mel"])
  t0 = int(np.flatnonzero(np.all(batch["a"]["coeffs"][0] == clip["coeffs"][:, None], axis=-1).any(0))[0])
  starts = [int(80 * (t - 2) / 25) for t in range(len(clip["coeffs"]))]
  expect = mel[np.clip(np.array(starts)[:, None] + np.arange(16), 0, len(mel) - 1)]
  frames = int(batch["a"]["mask"][0].sum())
  np.testing.assert_array_equal(batch["a"]["mel"][0, :frames], expect[t0 : t0 + frames])


def test_deterministic_and_resumes_exactly(clips, index):
  cfg, mesh = pipeline.data_config(), _mesh()
  run = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=5, source=clips, index=index)
  first = _take(run, 2)
  state = run.get_state()
  rest = _take(run, 3)
  resumed = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=5, source=clips, index=index)
  resumed.set_state(state)
  assert _equal(_take(resumed, 3), rest)
  again = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=5, source=clips, index=index)
  assert _equal(_take(again, 2), first)
  other = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=6, source=clips, index=index)
  assert not _equal(_take(other, 2), first)


def test_resume_survives_speed_and_augmentation_settings(clips, index):
  cfg, mesh = pipeline.data_config(), _mesh()
  run = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=5, source=clips, index=index)
  _take(run, 2)
  state = run.get_state()
  rest = _take(run, 2)
  changed = pipeline.data_config()
  changed.update(prefetch=1, read_threads=1, worker_buffer_size=1)
  changed.augment.gain_db = 6.0
  resumed = pipeline.make_batch_iterator(changed, "train", 8, mesh, seed=5, source=clips, index=index)
  resumed.set_state(state)
  again = _take(resumed, 2)
  for before, after in zip(rest, again):  # the same examples; only the audio is augmented now
    for view in pipeline.VIEWS:
      for key in ("clip", "coeffs", "mask", "emotion"):
        np.testing.assert_array_equal(before[view][key], after[view][key])
    assert not np.array_equal(before["a"]["mel"], after["a"]["mel"])


@pytest.mark.parametrize("setting, value, key", [("batch", 16, "train.batch_size"), ("seed", 6, "seed"),
                                                 ("window_frames", 16, "data.window_frames")])
def test_a_changed_example_setting_names_itself_and_the_reset_choice(clips, index, setting, value, key):
  cfg, mesh = pipeline.data_config(), _mesh()
  run = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=5, source=clips, index=index)
  _take(run, 1)
  state = run.get_state()
  args = {"batch": 8, "seed": 5}
  other = pipeline.data_config()
  if setting == "window_frames":
    other.window_frames = value
  else:
    args[setting] = value
  resumed = pipeline.make_batch_iterator(other, "train", args["batch"], mesh, seed=args["seed"], source=clips,
                                         index=index)
  with pytest.raises(pipeline.StateMismatchError,
                     match=rf"saved with {key}=\S+, now {value}; .*--config.data.reset_state=True"):
    resumed.set_state(state)
  resumed.set_state({"step": state["step"]})  # what data.reset_state passes on: the position only
  assert resumed.get_state()["step"] == 1
  next(resumed)


@pytest.mark.parametrize("workers, shard, shards", [(0, 0, 1), (0, 1, 4),
                                                    pytest.param(2, 1, 2, marks=pytest.mark.slow)])
def test_positions_of_grain_states_from_older_checkpoints(workers, shard, shards):
  import grain
  from absl import flags

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()  # grain's worker processes read absl flags

  loader = grain.DataLoader(
    data_source=list(range(1000)),
    sampler=grain.samplers.IndexSampler(num_records=1000, shuffle=False, num_epochs=1),
    worker_count=workers, shard_options=grain.sharding.ShardOptions(shard_index=shard, shard_count=shards))
  iterator = iter(loader)
  for _ in range(5):
    next(iterator)
  assert pipeline._grain_position(__import__("json").loads(iterator.get_state()), shard, shards) == 5


def test_same_global_batches_for_any_mesh_and_shard_count(clips, index):
  cfg = pipeline.data_config()
  reference = _take(
    pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), seed=2, source=clips, index=index), 2
  )
  single = pipeline.make_batch_iterator(cfg, "train", 8, _mesh((1, 1, 1)), seed=2, source=clips, index=index)
  assert _equal(_take(single, 2), reference)
  for shards in (2, 4):
    source = pipeline.train_shard_source(cfg, clips, index, 2, 8, shards)
    for step in range(2):
      parts = [source[step * shards + s] for s in range(shards)]
      joined = jax.tree.map(lambda *xs: np.concatenate(xs), *parts)
      assert _equal(joined, reference[step])


def test_examples_are_the_same_across_epoch_boundaries_and_epochs_differ(clips, index):
  """An example's draws depend on its number alone, not on the batch that asks for it."""
  setup = pipeline.train_shard_source(pipeline.data_config(), clips, index, 3, 8, 1).setup
  size = setup.sampler.anchors.size
  first = size - 5  # a batch straddling epochs 0 and 1
  whole = setup.draws(first, 10)
  one_by_one = [setup.draws(e, 1) for e in range(first, first + 10)]
  for column, parts in zip(whole, zip(*one_by_one)):
    np.testing.assert_array_equal(column, np.concatenate(parts))
  epoch0, epoch1 = setup.draws(0, size), setup.draws(size, size)
  assert sorted(epoch0[0][:, 0]) == sorted(epoch1[0][:, 0]) == list(range(size))  # every anchor, once
  assert not np.array_equal(epoch0[0], epoch1[0])


def test_batch_must_divide_over_data_axes(clips, index):
  with pytest.raises(UserError, match="divisible"):
    pipeline.make_batch_iterator(pipeline.data_config(), "train", 12, _mesh(), source=clips, index=index)


@pytest.mark.parametrize("fallback", ["same_emotion", "mask", "skip"])
def test_fallback_without_partners(clips, fallback):
  lonely = [c for c in clips if c["emotion"] == 0]  # one emotion: no cross-emotion partner anywhere
  cfg = pipeline.data_config()
  cfg.pairs.fallback = fallback
  if fallback == "skip":
    with pytest.raises(UserError, match="fallback"):
      pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), source=lonely)
    return
  batch = _host(next(pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), source=lonely)))
  np.testing.assert_array_equal(batch["ab"]["clip"], batch["a"]["clip"])
  np.testing.assert_array_equal(batch["ba"]["clip"], batch["b"]["clip"])
  if fallback == "same_emotion":
    np.testing.assert_array_equal(batch["ab"]["mel"], batch["a"]["mel"])
    assert np.array_equal(batch["ab"]["mask"], batch["a"]["mask"]) and batch["a"]["mask"].sum() > 0
  else:
    assert batch["ab"]["mask"].sum() == 0 and batch["ba"]["mask"].sum() == 0


def test_mixed_partners_only_masks_the_lonely(clips):
  mixed = [c for c in clips if c["emotion"] == 0 or c["sentence"] != "s2" or c["speaker"] != "spk1"]
  cfg = pipeline.data_config()
  cfg.pairs.fallback = "mask"
  index = align.build_pair_index(mixed)
  batch = _host(next(pipeline.make_batch_iterator(cfg, "train", 32, _mesh(), source=mixed, index=index)))
  paired = np.array([not index.clip_id[c].startswith("spk1/s2/") for c in batch["a"]["clip"]])
  assert paired.any() and not paired.all()
  assert np.all(batch["ab"]["mask"][paired].sum(1) > 0) and np.all(batch["ab"]["mask"][~paired] == 0)


def test_eval_iterator_covers_every_clip_once(clips, index):
  cfg = pipeline.data_config()
  batches = [
    _host(b) for b in pipeline.make_eval_iterator(cfg, "test", 8, _mesh(), source=clips, index=index)
  ]
  assert len(batches) == -(-len(clips) // 8)
  ids = np.concatenate([b["clip"] for b in batches])
  assert sorted(ids[ids >= 0].tolist()) == list(range(len(clips))) and np.sum(ids < 0) == 8 * len(
    batches
  ) - len(clips)
  for b in batches:
    assert b["mel"].shape[1] % cfg.eval_pad_frames == 0
    for row, clip in enumerate(b["clip"]):
      frames = len(clips[clip]["coeffs"]) if clip >= 0 else 0
      assert b["mask"][row].sum() == frames
      if clip >= 0:
        np.testing.assert_array_equal(b["coeffs"][row, :frames], clips[clip]["coeffs"])


def test_eval_shards_join_to_the_whole_batch(clips, index):
  whole = pipeline._EvalBatches(clips, index, 8, 1, 25)
  halves = pipeline._EvalBatches(clips, index, 8, 2, 25)
  for step in range(whole.num_batches):
    joined = jax.tree.map(lambda *xs: np.concatenate(xs), halves[2 * step], halves[2 * step + 1])
    assert _equal(joined, whole[step])


def test_augment_changes_only_mel(clips, index):
  cfg = pipeline.data_config()
  plain = _host(next(pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), source=clips, index=index)))
  cfg.augment.gain_db = 6.0
  louder = _host(next(pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), source=clips, index=index)))
  np.testing.assert_array_equal(plain["a"]["coeffs"], louder["a"]["coeffs"])
  assert not np.array_equal(plain["a"]["mel"], louder["a"]["mel"])
  assert np.abs(plain["a"]["mel"] - louder["a"]["mel"]).max() <= 6.0 * 8 / 100 + 1e-5
  cfg.augment.update(warp=0.1, eq_db=6.0, floor=0.5, mel_noise=0.2)
  recorded = _host(next(pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), source=clips, index=index)))
  for view in pipeline.VIEWS:
    np.testing.assert_array_equal(plain[view]["coeffs"], recorded[view]["coeffs"])
    assert np.abs(recorded[view]["mel"]).max() <= 4.0
  assert not np.array_equal(louder["a"]["mel"], recorded["a"]["mel"])
  # Held-out pairs (eval losses, the swap check) are never augmented.
  held_out = pipeline.make_batch_iterator(cfg, "val_speaker", 8, _mesh(), source=clips, index=index)
  held_out = _host(next(held_out))
  for view in pipeline.VIEWS:
    np.testing.assert_array_equal(plain[view]["mel"], held_out[view]["mel"])


_WORKERS_SCRIPT = """
import jax, fake_clips
from test_pipeline import _equal, _mesh, _take
from a2e_jax.data import align, pipeline

if __name__ == "__main__":  # grain's worker processes import this script again
  clips = fake_clips.make_clips()
  index = align.build_pair_index(clips)
  cfg = pipeline.data_config()
  cfg.workers = 1
  iterator = pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), seed=5, source=clips, index=index)
  reference = pipeline.make_batch_iterator(pipeline.data_config(), "train", 8, _mesh(), seed=5, source=clips,
                                           index=index)
  same = _equal(_take(iterator, 2), _take(reference, 2))
  iterator.close()  # as the trainer does when it stops
  print("same" if same else "differ")
"""


@pytest.mark.slow
def test_worker_processes_give_the_same_batches_and_leave_no_shared_memory(tmp_path):
  """In a process of its own, as `a2e train` runs: `a2e` parses its flags with argparse, and grain's worker
  processes read absl flags all the same; the shared-memory blocks that carry their batches are all freed
  before exit (else Python's resource tracker warns about "leaked shared_memory objects", 2 lines)."""
  script = tmp_path / "workers.py"
  script.write_text(_WORKERS_SCRIPT)
  tests = os.path.dirname(os.path.abspath(__file__))
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
  result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["same"], result.stdout + result.stderr
  assert "leaked shared_memory" not in result.stderr, result.stderr


def test_windows_cut_on_device_equal_the_host_windows_from_far_fewer_bytes(clips, index):
  """Views carrying window rows into the mel table (sent to the devices once), cut by `cut_windows` inside
  a jitted function, give exactly the host's windows; the host sends >= 10x fewer bytes per example."""
  auto = (jax.sharding.AxisType.Auto,) * 3  # the trainer's mesh: XLA places the gather
  cfg = pipeline.data_config()
  mesh = jax.make_mesh((4, 2, 1), ("data", "fsdp", "model"), axis_types=auto)
  bank = pipeline.ClipBank.read(clips)
  other = pipeline.ClipBank.read(clips[:3])  # another split before this one in the table
  table, bases = pipeline.mel_table({"val": other, "train": bank})
  assert bases == {"val": 0, "train": len(other.mel)}
  host = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=4, source=clips, index=index, bank=bank)
  device = pipeline.make_batch_iterator(cfg, "train", 8, mesh, seed=4, source=clips, index=index, bank=bank,
                                        mel_base=bases["train"])
  cut = jax.jit(lambda batch, table: {k: pipeline.cut_windows(v, table) for k, v in batch.items()})
  table_on_devices = jax.device_put(table, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
  for _ in range(2):
    expect, sent = next(host), next(device)
    assert set(sent["a"]) == {"frames", "beta0", "ints"} and sent["a"]["ints"].dtype == np.int32
    unpacked = jax.tree.map(np.asarray, pipeline.unpack_view(sent["a"]))  # outside jit too
    for key in ("coeffs", "eye", "mask", "beta0", "emotion", "intensity", "clip"):
      np.testing.assert_array_equal(unpacked[key], np.asarray(expect["a"][key]))
      assert unpacked[key].dtype == expect["a"][key].dtype
    assert _equal(_host(cut(sent, table_on_devices)), _host(expect))
    host_bytes, sent_bytes = (sum(x.nbytes for x in jax.tree.leaves(b)) for b in (expect, sent))
    assert host_bytes / sent_bytes >= 10


def test_prefetched_batches_keep_the_consumers_position(clips, index):
  cfg = pipeline.data_config()
  cfg.device_prefetch = 3
  run = pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), seed=5, source=clips, index=index)
  _take(run, 2)
  state = run.get_state()
  rest = _take(run, 2)
  cfg.device_prefetch = 0
  resumed = pipeline.make_batch_iterator(cfg, "train", 8, _mesh(), seed=5, source=clips, index=index)
  resumed.set_state(state)
  assert _equal(_take(resumed, 2), rest)
