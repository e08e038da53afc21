"""Built-in corpus on disk: the tiny preset's manifest, files, splits, determinism; augmentation; the CLI."""

import argparse
import collections
import json

import numpy as np
import pytest
import soundfile

from a2e_jax.cli.synth import add_synth_parser
from a2e_jax.core import schema
from a2e_jax.core.channels import ICT_CHANNELS
from a2e_jax.core.errors import UserError
from a2e_jax.data.synth import augment, corpus
from a2e_jax.formats.sequence import load_npz

pytestmark = pytest.mark.slow  # synthesises corpora with espeak-ng

MANIFEST_KEYS = {"clip_id", "audio", "coeffs", "fps", "speaker", "sentence", "emotion", "intensity", "split"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  out = tmp_path_factory.mktemp("corpus") / "tiny"
  summary = corpus.build_corpus(str(out), preset="tiny", seed=0, workers=1)
  records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
  return out, summary, records


def test_manifest_follows_the_schema(tiny):
  out, summary, records = tiny
  assert summary["clips"] == len(records) == 9 * len(corpus.STYLES)
  for r in records:
    assert set(r) == MANIFEST_KEYS
    assert r["emotion"] in schema.EMOTIONS and r["split"] in schema.SPLITS and r["fps"] == schema.FPS
    assert r["intensity"] in schema.INTENSITIES and (r["emotion"] != "neutral" or r["intensity"] == 1)
    assert r["clip_id"] == f"{r['speaker']}/{r['sentence']}/{r['emotion']}_{r['intensity']}"
    assert (out / r["audio"]).is_file() and (out / r["coeffs"]).is_file()
  assert [r["clip_id"] for r in records] == sorted(r["clip_id"] for r in records)
  info = json.loads((out / "corpus.json").read_text())
  assert info["format"] == corpus.CORPUS_FORMAT and info["phonemes"][0] == "_"
  assert set(info["sentences"]) == {r["sentence"] for r in records}


def test_clip_files_are_aligned(tiny):
  out, _, records = tiny
  for r in records[::7]:
    wav, rate = soundfile.read(out / r["audio"], dtype="float32")
    seq, extras = load_npz(str(out / r["coeffs"]))
    assert rate == schema.SAMPLE_RATE and wav.ndim == 1
    assert wav.shape[0] == seq.num_frames * schema.SAMPLES_PER_FRAME
    assert seq.channel_names == ICT_CHANNELS and seq.model == "builtin" and seq.fps == schema.FPS
    assert seq.coeffs.dtype == np.float32 and seq.coeffs.min() >= 0 and seq.coeffs.max() <= 1
    assert seq.pose.shape == (seq.num_frames, schema.POSE) and seq.eye.shape == (seq.num_frames, schema.EYE)
    phones, starts = extras["phones"], extras["phone_start"]
    assert phones.dtype == np.int32 and starts.dtype == np.float32 and phones.shape == starts.shape
    assert np.all(np.diff(starts) >= 0) and starts[-1] < wav.shape[0] / schema.SAMPLE_RATE


def test_every_group_has_all_cross_reconstruction_partners(tiny):
  _, _, records = tiny
  groups = collections.defaultdict(set)
  for r in records:
    groups[r["speaker"], r["sentence"]].add((r["emotion"], r["intensity"]))
  assert all(styles == set(corpus.STYLES) for styles in groups.values())
  beta0 = {}
  out = tiny[0]
  for r in records[::5]:
    b = load_npz(str(out / r["coeffs"]))[0].beta0
    np.testing.assert_array_equal(beta0.setdefault(r["speaker"], b), b)


def test_splits_hold_out_speakers_and_sentences(tiny):
  _, summary, records = tiny
  assert all(summary["splits"][s] > 0 for s in schema.SPLITS)
  speakers = {s: {r["speaker"] for r in records if r["split"] == s} for s in schema.SPLITS}
  sentences = {s: {r["sentence"] for r in records if r["split"] == s} for s in schema.SPLITS}
  assert not speakers["train"] & (speakers["val_speaker"] | speakers["test"])
  assert not sentences["train"] & (sentences["val_sentence"] | sentences["test"])
  assert speakers["test"] == speakers["val_speaker"]


@pytest.mark.parametrize("preset", ["default", "wide", "large"])
def test_bigger_presets_split_cleanly(preset):
  assert tuple(corpus.PRESETS) == schema.SYNTHETIC_PRESETS  # the CLI's and the builder's choices
  groups = corpus.plan(corpus.PRESETS[preset], seed=3)
  by_split = collections.defaultdict(list)
  for speaker, sentence, split in groups:
    by_split[split].append((speaker, sentence))
  seen_sentences = {s for _, s in by_split["train"]}
  assert not seen_sentences & {s for _, s in by_split["val_sentence"] + by_split["test"]}
  assert not {k for k, _ in by_split["train"]} & {k for k, _ in by_split["val_speaker"] + by_split["test"]}
  assert len(set(groups)) == len(groups) and len(seen_sentences) > 100


def test_same_seed_gives_identical_bytes_with_any_worker_count(tiny, tmp_path):
  out, _, _ = tiny
  again = tmp_path / "again"
  corpus.build_corpus(str(again), preset="tiny", seed=0, workers=2)
  first = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
  assert first == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
  for rel in first:
    if rel.name != "corpus.json":
      assert (out / rel).read_bytes() == (again / rel).read_bytes(), rel


def test_user_errors(tiny, tmp_path):
  with pytest.raises(UserError, match="already holds a corpus"):
    corpus.build_corpus(str(tiny[0]), preset="tiny")
  with pytest.raises(UserError, match="unknown corpus preset"):
    corpus.build_corpus(str(tmp_path), preset="huge")
  with pytest.raises(UserError, match="outside"):
    corpus.build_corpus(str(tmp_path), preset="tiny", augment_fraction=1.5)


def test_augmentation_keeps_time_and_reaches_its_snr():
  rng = np.random.default_rng(0)
  t = np.arange(16000) / 16000
  speech = 0.5 * np.sin(2 * np.pi * 220 * t) * (t > 0.25)
  channel = {"level_db": 0.0, "noise": {"kind": "pink", "snr_db": 20.0}}
  noisy = augment.apply_channel(speech, 16000, channel, rng)
  residual = noisy - speech
  snr = 10 * np.log10(np.mean(speech[t > 0.25] ** 2) / np.mean(residual**2))
  assert noisy.shape == speech.shape and snr == pytest.approx(20.0, abs=1.0)
  rir = augment.room_impulse_response(16000, 0.4, 6.0, rng)
  assert rir[0] == 1.0 and np.argmax(np.abs(rir)) == 0
  tail = rir[1:] ** 2
  assert 10 * np.log10(tail[:800].sum() / tail[-800:].sum()) > 30  # decays
  channel = augment.sample_channel(np.random.default_rng(1), augment.AugmentConfig(reverb_probability=1.0))
  wet = augment.apply_channel(speech, 16000, json.loads(json.dumps(channel)), np.random.default_rng(2))
  assert wet.shape == speech.shape and np.abs(wet).max() <= 1.0
  onset = int(np.argmax(np.abs(wet) > 1e-3))
  assert abs(onset - 4000) < 20  # direct path at lag 0


def test_cli_parser_passes_its_flags(monkeypatch, capsys):
  calls = []
  monkeypatch.setattr(corpus, "build_corpus", lambda out, **kw: calls.append((out, kw)) or {"clips": 1})
  parser = argparse.ArgumentParser()
  add_synth_parser(parser.add_subparsers())
  args = parser.parse_args(["synth", "--out", "somewhere", "--preset", "tiny", "--seed", "4",
                            "--workers", "1", "--quiet", "--engines", "espeak, flite"])
  assert args.func(args) == 0 and json.loads(capsys.readouterr().out) == {"clips": 1}
  assert calls == [("somewhere", {"preset": "tiny", "seed": 4, "workers": 1, "overwrite": False,
                                  "progress": False, "augment_fraction": None,
                                  "engine_names": ("espeak", "flite")})]
  with pytest.raises(UserError, match="--workers"):
    args.func(parser.parse_args(["synth", "--out", "x", "--workers", "0"]))
