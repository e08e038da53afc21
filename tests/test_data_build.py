"""Manifests, clip loading, tools/prepare_mead.py on a fake MEAD tree, the TFDS builders and `a2e data`."""

import importlib.util
import json
import subprocess
import sys

import fake_buckets
import fake_clips
import imageio_ffmpeg
import numpy as np
import pytest
import scipy.io
import soundfile as sf
from conftest import tool_module

from a2e_jax import cli
from a2e_jax.audio import features, io
from a2e_jax.core import channels, schema
from a2e_jax.core.errors import UserError
from a2e_jax.data import builders, manifest, pipeline
from a2e_jax.face import coeffs as layouts
from a2e_jax.formats.files import read_sequence
from a2e_jax.formats.sequence import CoeffSequence, save_npz

pytestmark = pytest.mark.slow  # builds TFDS datasets

prepare_mead = tool_module("prepare_mead")

ACTORS = ("M001", "W002")
STYLES = (("neutral", 1), ("angry", 3), ("happy", 2))
SENTENCES = ("001", "002")


def _coefficients(rng, frames: int) -> np.ndarray:
  t = np.arange(frames)[:, None] / 30.0
  return (0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 3, 64) * t + rng.uniform(0, 6, 64))).astype(np.float32)


def _write_coefficients(path_stem, kind: str, exp: np.ndarray):
  """Our .npz, a Deep3DFaceRecon-style per-clip .mat (exp/angle/trans/id) or a [T,257] .npy, at 30 fps."""
  frames = len(exp)
  pose = np.zeros((frames, 6), np.float32)
  if kind == "npz":
    save_npz(
      f"{path_stem}.npz",
      CoeffSequence(coeffs=exp, channel_names=channels.BFM_CHANNELS, fps=30.0, pose=pose, model="bfm"),
    )
  elif kind == "mat":
    scipy.io.savemat(
      f"{path_stem}.mat",
      {"exp": exp, "angle": pose[:, :3], "trans": pose[:, 3:], "id": np.zeros((frames, 80), np.float32)},
    )
  else:
    full = np.zeros((frames, 257), np.float32)
    full[:, layouts.slices("deep3d")["exp"]] = exp
    np.save(f"{path_stem}.npy", full)


@pytest.fixture(scope="module")
def mead(tmp_path_factory):
  """A fake MEAD tree (m4a audio at 48 kHz, coefficients at 30 fps in three formats) with three faults:
  a corrupt m4a, a coefficient file 10 frames short, and a clip without coefficients."""
  tmp = tmp_path_factory.mktemp("mead")
  root, coeff_root = tmp / "MEAD", tmp / "coeffs"
  rng = np.random.default_rng(0)
  texts = {s: (np.r_[0, rng.integers(1, 12, 6), 0], rng.uniform(0.06, 0.12, 8)) for s in SENTENCES}
  kinds = ("npz", "mat", "npy")
  number = 0
  for actor in ACTORS:
    for emotion, level in STYLES:
      folder = root / actor / "audio" / emotion / f"level_{level}"
      coeff_folder = coeff_root / actor / emotion / f"level_{level}"  # MEAD's video tree: no "audio" level
      folder.mkdir(parents=True)
      coeff_folder.mkdir(parents=True)
      for sentence in SENTENCES:
        wav, _ = fake_clips.render(rng, *texts[sentence], rate=1.0 + 0.1 * level, f0=140.0, gain=0.6)
        sf.write(tmp / "tmp.wav", wav, 16000)
        subprocess.run(
          [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-v",
            "error",
            "-i",
            str(tmp / "tmp.wav"),
            "-ar",
            "48000",
            "-c:a",
            "aac",
            str(folder / f"{sentence}.m4a"),
          ],
          check=True,
        )
        frames = int(round(len(wav) / 16000 * 30))
        _write_coefficients(coeff_folder / sentence, kinds[number % 3], _coefficients(rng, frames))
        number += 1
  (root / "M001" / "audio" / "angry" / "level_3" / "002.m4a").write_bytes(b"\x00not audio" * 100)
  _write_coefficients(coeff_root / "W002" / "happy" / "level_2" / "001", "npz", _coefficients(rng, 5))
  for path in (coeff_root / "W002" / "neutral" / "level_1").glob("002.*"):
    path.unlink()
  return root, coeff_root, tmp


@pytest.fixture(scope="module")
def built(mead):
  root, coeff_root, tmp = mead
  out = tmp / "corpus" / "manifest.jsonl"
  assert (
    prepare_mead.main(
      [
        "--root",
        str(root),
        "--coeffs",
        str(coeff_root),
        "--out",
        str(out),
        "--test-speakers",
        "W002",
        "--val-sentences",
        "002",
      ]
    )
    == 0
  )
  data_dir = tmp / "tfds"
  status = cli.main(
    [
      "data",
      "build",
      "--manifest",
      str(out),
      "--data-dir",
      str(data_dir),
      "--name",
      "mead",
      "--workers",
      "1",
      "--quiet",
    ]
  )
  assert status == 0
  return out, data_dir


def test_prepare_mead_writes_the_manifest(built):
  out, _ = built
  entries = manifest.read_manifest(str(out))
  assert len(entries) == len(ACTORS) * len(STYLES) * len(SENTENCES) - 1  # one clip has no coefficients
  by_id = {e.clip_id: e for e in entries}
  angry = by_id["M001/angry/level_3/001"]
  assert (angry.speaker, angry.sentence, angry.emotion, angry.intensity) == ("M001", "001", 1, 3)
  assert angry.fps == 30.0 and angry.split == "train" and angry.audio.endswith("001.m4a")
  assert by_id["M001/happy/level_2/002"].split == "val_sentence"
  assert {e.split for e in entries if e.speaker == "W002"} == {"test"}


def test_build_reports_and_counts_bad_clips(built):
  _, data_dir = built
  path = builders.dataset_dir(str(data_dir), "a2e_manifest/mead")
  with open(f"{path}/{builders.REPORT_FILE}") as f:
    report = json.load(f)
  assert report["counts"] == {"audio": 1, "duration": 1}
  problems = dict(report["problems"])
  assert "002.m4a" in problems["audio"]
  assert "001.m4a" in problems["duration"] and "001.npz" in problems["duration"]  # names both files
  meta = builders.metadata(str(data_dir), "a2e_manifest/mead")
  assert meta["splits"] == {"train": 3, "val_sentence": 3 - 1, "test": 6 - 2}
  assert meta["num_coeffs"] == 64 and tuple(meta["channel_names"]) == channels.BFM_CHANNELS


def test_records_hold_the_resampled_coefficients_and_the_mel(built):
  out, data_dir = built
  source, index = builders.open_split(str(data_dir), "a2e_manifest/mead", "train")
  by_id = {e.clip_id: e for e in manifest.read_manifest(str(out))}
  for i in range(len(source)):
    record = source[i]
    entry = by_id[record["clip_id"].decode()]
    seq = read_sequence(entry.coeffs, fps=30.0, resample_to=25.0)
    np.testing.assert_allclose(record["coeffs"], seq.coeffs, atol=1e-6)
    wav = io.load_audio(entry.audio)
    np.testing.assert_allclose(
      record["mel"], features.log_mel(features.crop_or_pad(wav, seq.num_frames)), atol=1e-5
    )
    assert record["mel"].shape[0] == schema.num_mel_frames(seq.num_frames)
    np.testing.assert_array_equal(record["beta0"], seq.coeffs[0])  # no beta0 in the files: the first frame
    assert record["eye"].shape == (seq.num_frames, 4) and not record["eye"].any()
    assert index.clip_id[i] == entry.clip_id and index.num_frames[i] == seq.num_frames


def test_built_dataset_feeds_the_pipeline_without_tensorflow(built):
  import jax

  _, data_dir = built
  cfg = pipeline.data_config()
  cfg.data_dir, cfg.dataset, cfg.window_frames = str(data_dir), "a2e_manifest/mead", 16
  mesh = jax.make_mesh((8, 1, 1), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 3)
  batch = jax.tree.map(np.asarray, next(pipeline.make_batch_iterator(cfg, "train", 8, mesh)))
  assert batch["a"]["coeffs"].shape == (8, 16, 64)
  assert np.all(batch["a"]["emotion"] != batch["b"]["emotion"])
  assert "tensorflow" not in sys.modules


def test_a_dataset_in_a_bucket_is_read_where_array_record_can_and_refused_in_one_line_elsewhere(built):
  """Metadata and pair index come through etils.epath from any URL; the records through array_record's
  reader, which opens gs:// itself (its own GCS client: not run here, there is no network) but no fsspec
  filesystem, so another scheme stops with one line saying to copy the dataset locally."""
  import jax

  _, data_dir = built
  name = "a2e_manifest/mead"
  local = builders.dataset_dir(str(data_dir), name)
  mesh = jax.make_mesh((8, 1, 1), ("data", "fsdp", "model"), axis_types=(jax.sharding.AxisType.Explicit,) * 3)
  with fake_buckets.registered("gs", "gcs") as gcs, fake_buckets.registered("s3") as s3:
    for fs in (gcs(), s3()):
      fs.put(local, f"{fs.protocol[0]}://bucket/tfds/{name}/1.0.0", recursive=True)
    assert builders.metadata("s3://bucket/tfds", name) == builders.metadata(str(data_dir), name)
    cfg = pipeline.data_config()
    cfg.data_dir, cfg.dataset, cfg.window_frames = "s3://bucket/tfds", name, 16
    with pytest.raises(UserError) as refused:
      pipeline.make_batch_iterator(cfg, "train", 8, mesh)
    message = str(refused.value)
    assert "\n" not in message and "s3://" in message and "copy the dataset to a local folder" in message
    source, index = builders.open_split("gs://bucket/tfds", name, "train")
    local_source, local_index = builders.open_split(str(data_dir), name, "train")
    np.testing.assert_array_equal(index.warps, local_index.warps)
    files = [f.filename for f in source.dataset_info.splits["train"].file_instructions]
    assert files and all(f.startswith(f"gs://bucket/tfds/{name}/1.0.0/") for f in files)  # never 'gs:/...'
  with pytest.raises(UserError, match=r"^data_dir memory://tfds: etils.epath reads no memory:// URLs"):
    builders.open_split("memory://tfds", name, "train")


def test_tfds_data_source_by_name(built):
  import tensorflow_datasets as tfds

  _, data_dir = built
  source = tfds.data_source("a2e_manifest/mead", split="test", data_dir=str(data_dir), download=False)
  assert len(source) == 4 and source[0]["mel"].shape[1] == 80


def test_cli_errors_exit_2(built, tmp_path, capsys):
  out, data_dir = built
  assert (
    cli.main(["data", "build", "--manifest", str(out), "--data-dir", str(data_dir), "--name", "mead"]) == 2
  )
  assert "--overwrite" in capsys.readouterr().err
  assert cli.main(["data", "align", "--dataset", "a2e_manifest/nothing", "--data-dir", str(data_dir)]) == 2
  assert "a2e data build" in capsys.readouterr().err
  bad = tmp_path / "manifest.jsonl"
  bad.write_text('{"clip_id": "x", "audio": "a.wav", "coeffs": "c.npz", "speaker": "s"}\n')
  assert cli.main(["data", "build", "--manifest", str(bad), "--data-dir", str(tmp_path / "d")]) == 2
  err = capsys.readouterr().err
  assert "line 1" in err and "sentence" in err and err.count("\n") == 1
  missing = ["data", "build", "--synthetic", "tiny", "--corpus", str(tmp_path / "nowhere"), "--data-dir",
             str(tmp_path / "d2")]
  assert cli.main(missing) == 2
  err = capsys.readouterr().err
  assert "holds no manifest.jsonl" in err and err.count("\n") == 1
  assert not (tmp_path / "d2").exists()  # nothing synthesised or built


@pytest.mark.parametrize(
  "line, fragment",
  [
    ("{not json", "not valid JSON"),
    ('{"clip_id": "x", "audio": "a", "coeffs": "c", "speaker": "s"}', "sentence"),
    (
      '{"clip_id": "x", "audio": "a", "coeffs": "c", "speaker": "s", "sentence": "1", "emotion": "bored"}',
      "unknown emotion",
    ),
    (
      '{"clip_id": "x", "audio": "a", "coeffs": "c", "speaker": "s", "sentence": "1", "split": "dev"}',
      "split",
    ),
    (
      '{"clip_id": "x", "audio": "a", "coeffs": "c", "speaker": "s", "sentence": "1", "intensity": 5}',
      "intensity",
    ),
    (
      '{"clip_id": "x", "audio": "a", "coeffs": "c", "speaker": "s", "sentence": "1", "colour": "red"}',
      "colour",
    ),
  ],
)
def test_manifest_errors_name_file_and_line(tmp_path, line, fragment):
  path = tmp_path / "manifest.jsonl"
  path.write_text(
    '{"clip_id": "ok", "audio": "a", "coeffs": "c", "speaker": "s", "sentence": "1"}\n' + line + "\n"
  )
  with pytest.raises(UserError, match=fragment) as info:
    manifest.read_manifest(str(path))
  assert "line 2" in str(info.value)


def test_csv_manifest_and_duplicates(tmp_path):
  path = tmp_path / "m.csv"
  path.write_text(
    "clip_id,audio,coeffs,speaker,sentence,emotion,intensity,split,fps\n"
    "a,x.wav,x.npz,s1,1,Surprise,2,test,30\n"
    "b,y.wav,y.npz,s1,1,,,,\n"
  )
  a, b = manifest.read_manifest(str(path))
  assert (a.emotion, a.intensity, a.split, a.fps) == (schema.EMOTIONS.index("surprised"), 2, "test", 30.0)
  assert (b.emotion, b.intensity, b.split, b.fps) == (schema.NEUTRAL, 0, "train", None)
  assert a.audio == str(tmp_path / "x.wav")
  path.write_text("clip_id,audio,coeffs,speaker,sentence\na,x,x,s,1\na,y,y,s,1\n")
  with pytest.raises(UserError, match="repeats line 2"):
    manifest.read_manifest(str(path))


@pytest.mark.parametrize(
  "layout, rel, expect",
  [
    ("cremad", "1001_DFA_ANG_XX.wav", ("1001", "DFA", "angry", 0)),
    ("cremad", "1091_IEO_HAP_HI.wav", ("1091", "IEO", "happy", 3)),
    ("ravdess", "Actor_12/03-01-05-02-01-01-12.wav", ("actor12", "statement1", "angry", 2)),
    ("ravdess", "Actor_01/03-01-02-01-02-02-01.wav", ("actor01", "statement2", "neutral", 1)),
    ("flat", "WRA_AdamSchiff_000.mp4", ("WRA_AdamSchiff", "WRA_AdamSchiff_000", "", 0)),
    ("mead", "M003/audio/fear/level_2/017.m4a", ("M003", "017", "fear", 2)),
  ],
)
def test_layout_parsers(layout, rel, expect):
  fields = prepare_mead.PARSERS[layout](rel)
  assert (fields["speaker"], fields["sentence"], fields["emotion"], fields["intensity"]) == expect
  if fields["emotion"]:
    schema.emotion_index(fields["emotion"])


def test_layout_mismatch_is_reported(tmp_path, capsys):
  root, coeffs = tmp_path / "r", tmp_path / "c"
  (root / "x").mkdir(parents=True)
  coeffs.mkdir()
  (root / "x" / "song.wav").write_bytes(b"")
  assert (
    prepare_mead.main(["--root", str(root), "--coeffs", str(coeffs), "--out", str(tmp_path / "m.jsonl")]) == 2
  )
  err = capsys.readouterr().err
  assert "not in the mead layout" in err and "no clip under" in err


def test_info_reports_the_dataset(built, capsys):
  _, data_dir = built
  assert cli.main(["data", "info", "--dataset", "a2e_manifest/mead", "--data-dir", str(data_dir)]) == 0
  info = json.loads(capsys.readouterr().out)
  assert info["splits"]["train"] == 3 and info["left_out"] == {"audio": 1, "duration": 1}
  assert info["pairing"]["test"]["groups"] == 2 and info["channel_names"].startswith("exp00 exp01")


def test_parallel_build_writes_the_same_records(built, tmp_path):
  import tensorflow_datasets as tfds

  out, data_dir = built
  builder = builders.A2eManifest(
    config="mead", manifest=str(out), workers=2, data_dir=str(tmp_path), file_format="array_record"
  )
  builder.download_and_prepare()
  assert builder.report.counts() == {"audio": 1, "duration": 1}
  serial = tfds.data_source("a2e_manifest/mead", split="train", data_dir=str(data_dir))
  parallel = builder.as_data_source("train")
  by_id = {r["clip_id"]: r for r in serial}
  for record in parallel:
    np.testing.assert_array_equal(record["mel"], by_id[record["clip_id"]]["mel"])


def test_split_over_tfds_memory_buffer_builds_without_tensorflow(built, tmp_path, monkeypatch):
  """TFDS spills a split over its shuffle buffer (1 GB) to disk through TensorFlow; the build keeps it in
  memory instead, up to builders.shuffle_memory_bytes()."""
  from tensorflow_datasets.core import shuffle

  out, data_dir = built
  monkeypatch.setattr(shuffle, "MAX_MEM_BUFFER_SIZE", 1)  # every split is over TFDS's own buffer
  builder = builders.A2eManifest(config="mead", manifest=str(out), data_dir=str(tmp_path),
                                 file_format="array_record")
  builder.download_and_prepare()
  assert shuffle.MAX_MEM_BUFFER_SIZE == 1  # TFDS's setting is given back
  import tensorflow_datasets as tfds

  serial = tfds.data_source("a2e_manifest/mead", split="train", data_dir=str(data_dir))
  assert sorted(r["clip_id"] for r in builder.as_data_source("train")) == sorted(r["clip_id"] for r in serial)


def test_split_over_the_memory_share_is_a_clear_error(built, tmp_path, monkeypatch):
  if importlib.util.find_spec("tensorflow") is not None:
    pytest.skip("TensorFlow is installed here, so TFDS can spill a large split to disk")
  out, _ = built
  monkeypatch.setattr(builders, "shuffle_memory_bytes", lambda: 1)
  builder = builders.A2eManifest(config="mead", manifest=str(out), data_dir=str(tmp_path),
                                 file_format="array_record")
  with pytest.raises(UserError, match="more memory, or install tensorflow-cpu"):
    builder.download_and_prepare()


def test_synthetic_builder_synthesises_a_missing_corpus(tmp_path, monkeypatch):
  from a2e_jax.data.synth import corpus

  calls = []

  def fake_build_corpus(folder, preset, seed, workers, overwrite):
    calls.append((preset, seed))
    clips = fake_clips.make_clips(speakers=1, sentences=1, emotions=(0, 1))
    fake_clips.write_corpus(folder, clips)

  monkeypatch.setattr(corpus, "build_corpus", fake_build_corpus)
  builder = builders.A2eSynthetic(config="tiny", seed=3, data_dir=str(tmp_path), file_format="array_record")
  builder.download_and_prepare()
  assert calls == [("tiny", 3)]
  assert builder.info.splits["train"].num_examples == 2
