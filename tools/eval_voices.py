"""Voices the network never heard: cross-engine figures, emotion calibration, lips in pauses, real speech.

  python tools/eval_voices.py                                  # the bundled weights, every installed engine
  python tools/eval_voices.py --calibrate flite --write-card   # fit temperature and threshold, store them
  python tools/eval_voices.py --checkpoint runs/demo_voices_bundle --calibrate espeak,flite,hibari \
    --engines espeak,flite,hibari,festival --write-card        # weights trained on three engines
  python tools/eval_voices.py --checkpoint runs/x --engines espeak,festival --groups 8

Clips: for each engine (data/synth/engines.py), `--groups` (speaker, sentence) groups rendered in all 22
MEAD styles with their ground truth (data/synth/utterance.py): espeak-ng's from the held-out speakers of
the `wide` preset (the demo weights' val_speaker/test groups), the other engines' from their own speakers
(all unheard by weights trained on espeak-ng alone). Each clip is generated twice:

  before   `--emotion speech` without the pause gate and with an uncalibrated head (temperature 1): what
           `a2e generate` did before the gate and the fallback existed
  after    the default: `auto` (calibrated, smoothed, neutral below --threshold) and the pause gate

and scored on: lip vertex error against the truth (all frames, and speech frames only: silence being RMS
< 0.1 x the clip's loudest frame for >= 3 frames); neutral-read rate on neutral renditions (the share
whose auto reading fell back to neutral, trust < 0.5) and the coefficient classifier's neutral rate on
the generated face; emotion accuracy on the other renditions (the classifier, trained on ground truth,
reading the generated face) and override accuracy (another emotion requested by label); lips at rest in
silent stretches (|lip gap - the reference rest's| <= 2 mm) and within 3 frames of the start of pauses >=
200 ms; the jaw's correlation with the RMS envelope. Calibration (--calibrate ENGINES): the temperature
minimising the negative log-likelihood of the emotion head's chunk logits on those engines' clips, with
the expected calibration error (15 bins) before and after on every engine, and auto's threshold
(confidence.fit_threshold: the highest that keeps the emotion of those clips within 3 points of following
every reading), then the offset on the neutral logit (confidence.fit_neutral_offset: the largest that
keeps them within 5 points). Calibrate on engines the weights trained on (their card's data.engines):
their clips are then taken from groups held out of training. Then the same lip and emotion figures on
../shared/audio/real_speech_en_stereo_8s.wav.
Writes JSON (--out) and prints a table.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL_SPEECH = os.path.join(os.path.dirname(REPO), "shared", "audio", "real_speech_en_stereo_8s.wav")
REST_TOLERANCE_MM = 2.0
PAUSE_FRAMES = 5  # 200 ms
SETTLE_FRAMES = 3


def clip_set(engine: str, groups: int, preset: str = "wide", seed: int = 0, train: bool = False,
             neutral_only: bool = False, heard: bool = False):
  """Clips (dicts: wav, coeffs, beta0, eye, emotion, intensity, speaker, sentence) of `groups` groups of
  `engine` in all 22 styles (only neutral with `neutral_only`); `train` takes training groups instead of
  held-out ones; `heard` (an engine the weights trained on) only groups outside `train`."""
  from a2e_jax.core import schema
  from a2e_jax.data.synth import corpus, engines, voices
  from a2e_jax.data.synth.sentences import SENTENCES
  from a2e_jax.data.synth.utterance import synthesize_utterance

  config = corpus.PRESETS[preset]
  if engine == "espeak":
    wanted = ("train",) if train else ("val_speaker", "test")
    plan = [g for g in corpus.plan(config, seed) if g[2] in wanted]
  else:
    plan = corpus.engine_plan(config, seed, engine, engines.engine_voices(engine))
    if train:
      plan = [g for g in plan if g[2] == "train"]
    elif heard:
      plan = [g for g in plan if g[2] != "train"]
  # Spread the picks over speakers: every k-th group of the plan.
  picks = [plan[i] for i in np.linspace(0, len(plan) - 1, min(groups, len(plan))).astype(int)]
  clips = []
  for speaker, sentence, _ in picks:
    person = voices.parse_speaker(speaker)
    for emotion, intensity in corpus.STYLES[:1] if neutral_only else corpus.STYLES:
      clip_seed = [seed, person.seed_key, sentence, schema.EMOTIONS.index(emotion), intensity]
      wav, _, seq = synthesize_utterance(SENTENCES[sentence], person, emotion, intensity, clip_seed)
      clips.append({"wav": wav, "coeffs": seq.coeffs, "beta0": seq.beta0, "eye": seq.eye,
                    "emotion": schema.EMOTIONS.index(emotion), "intensity": intensity,
                    "speaker": person.id, "sentence": sentence})
  return clips


def generate_clip(generator, wav, beta0_k, eye_t4, emotion=None, intensity=None):
  """(coeffs [T,K], info) of `Generator.__call__`'s path with a given β0 and eye control (a corpus clip's)."""
  from a2e_jax.core import schema
  from a2e_jax.infer import pauses, request

  keys = request.emotion_keys(emotion, intensity, None, None, generator.clip_emotion)
  silent, info = [], {}
  chunks, num_frames = generator.audio_chunks(wav, schema.SAMPLE_RATE, silent)
  rest_t = pauses.rest_weight(silent[0]) if silent[0].any() else None
  eye = np.asarray(eye_t4[:num_frames], np.float32)
  blocks = generator.run(chunks, num_frames, keys=keys, eye_te=lambda _: eye, beta0_k=beta0_k, info=info,
                         rest_t=rest_t)
  return np.concatenate(list(blocks)), info


def _runs(mask_t):
  edges = np.flatnonzero(np.diff(np.concatenate([[0], mask_t.astype(int), [0]])))
  return list(zip(edges[0::2], edges[1::2]))


def rest_figures(face, coeffs_tk, beta0_k, silent_t) -> dict:
  """Lip gap against the reference rest's in silent stretches and after the start of long pauses."""
  from eval_generate import lip_gap_mm

  gap = lip_gap_mm(face, coeffs_tk)
  rest = lip_gap_mm(face, np.asarray(beta0_k)[None])[0]
  ok = np.abs(gap - rest) <= REST_TOLERANCE_MM
  settled = [ok[s + SETTLE_FRAMES:e] for s, e in _runs(silent_t) if e - s >= PAUSE_FRAMES]
  settled = np.concatenate(settled) if settled else np.zeros(0, bool)
  return {"silent_frames": int(silent_t.sum()), "rest_ok": int(ok[silent_t].sum()),
          "pause_settled_frames": int(settled.size), "pause_settled_ok": int(settled.sum()),
          "gap_silent_sum": float(gap[silent_t].sum()), "gap_speech_sum": float(gap[~silent_t].sum()),
          "speech_frames": int((~silent_t).sum())}


def rest_rates(sums: dict) -> dict:
  """The shares and means of `rest_figures`' sums (over one clip or many)."""
  return {
    "rest_in_silence": sums["rest_ok"] / max(sums["silent_frames"], 1),
    "rest_after_3_frames": sums["pause_settled_ok"] / max(sums["pause_settled_frames"], 1),
    "silent_frames": sums["silent_frames"],
    "lip_gap_silent_mm": sums["gap_silent_sum"] / max(sums["silent_frames"], 1),
    "lip_gap_speech_mm": sums["gap_speech_sum"] / max(sums["speech_frames"], 1),
  }


def neutral_reads(generators, clips) -> dict:
  """{setting: share of the neutral `clips` that auto reads as neutral (trust < 0.5)} (None: no auto)."""
  out = {}
  for name, generator, request in generators:
    if request is not None:
      out[name] = None
      continue
    trust = [generate_clip(generator, c["wav"], c["beta0"], c["eye"])[1]["emotion_trust"] for c in clips]
    out[name] = float(np.mean(np.array(trust) < 0.5))
  return out


def evaluate_engine(generators, clips, face, classifier) -> dict:
  """{setting: figures} over `clips` for each (name, Generator, emotion request) in `generators`."""
  from eval_generate import jaw_opening_mm

  from a2e_jax.core import schema
  from a2e_jax.eval import metrics
  from a2e_jax.eval.evaluate import MM2_PER_UNIT2, swap_targets
  from a2e_jax.infer import pauses

  lips = np.asarray(face.region("lips"))
  out = {}
  for name, generator, request in generators:
    lve, lve_speech, neutral_fallback, corr = [], [], [], []
    rest = {}
    made, swapped, labels, targets = [], [], [], []
    for i, clip in enumerate(clips):
      truth = clip["coeffs"]
      pred, info = generate_clip(generator, clip["wav"], clip["beta0"], clip["eye"], request)
      n = len(pred)
      rms = pauses.frame_rms(clip["wav"], n)
      silent = pauses.silent_stretches(rms)
      err = metrics.lve_frames(metrics.region_vertices(face, lips, pred),
                               metrics.region_vertices(face, lips, truth[:n]))
      lve.append(err)
      lve_speech.append(err[~silent])
      for key, value in rest_figures(face, pred, clip["beta0"], silent).items():
        rest[key] = rest.get(key, 0) + value
      corr.append(np.corrcoef(jaw_opening_mm(face, pred), rms)[0, 1])
      if clip["emotion"] == schema.NEUTRAL:
        neutral_fallback.append(info.get("emotion_trust", 1.0) < 0.5)
      made.append((pred, clip["beta0"]))
      labels.append(clip["emotion"])
      target = int(swap_targets(np.array([clip["emotion"]]), np.array([i]))[0])
      over, _ = generate_clip(generator, clip["wav"], clip["beta0"], clip["eye"], schema.EMOTIONS[target],
                              float(clip["intensity"]))
      swapped.append((over[:n], clip["beta0"]))
      targets.append(target)
    read = classifier.predict(made)
    read_swap = classifier.predict(swapped)
    labels, targets = np.array(labels), np.array(targets)
    emotional = labels != schema.NEUTRAL
    out[name] = {
      "clips": len(clips),
      "lve_mm2": float(np.concatenate(lve).mean() * MM2_PER_UNIT2),
      "lve_speech_mm2": float(np.concatenate(lve_speech).mean() * MM2_PER_UNIT2),
      "neutral_read_rate": float(np.mean(neutral_fallback)) if request is None else None,
      "neutral_read_rate_face": float(np.mean(read[~emotional] == schema.NEUTRAL)),
      "emotion_accuracy": float(np.mean(read[emotional] == labels[emotional])),
      "override_accuracy": float(np.mean(read_swap == targets)),
      **rest_rates(rest),
      "jaw_envelope_correlation": float(np.nanmean(corr)),
    }
  return out


def chunk_logits(generator, clips, latents: bool = False):
  """([n,E] emotion-head logits of every chunk of every clip, [n] the clip's emotion, [n] clip index);
  with `latents`, also [c,D] each clip's mean pooled emotion latent (what auto's smoothing sees)."""
  from a2e_jax.core import schema

  rows, labels, owner, means = [], [], [], []
  for i, clip in enumerate(clips):
    chunks, _ = generator.audio_chunks(clip["wav"], schema.SAMPLE_RATE)
    pooled, logits = generator.network.emotion_pass(chunks())
    rows.append(logits)
    means.append(pooled.mean(axis=0))
    labels += [clip["emotion"]] * len(logits)
    owner += [i] * len(logits)
  out = np.concatenate(rows), np.array(labels), np.array(owner)
  return (*out, np.stack(means)) if latents else out


def clip_readings(probs_ne, labels_n, owner_n):
  """([c,E] each clip's mean chunk probabilities, [c] its emotion): what auto's smoothing sees on a clip."""
  from a2e_jax.infer import confidence

  return (confidence.clip_means(probs_ne, owner_n),
          np.array([labels_n[owner_n == i][0] for i in np.unique(owner_n)]))


def calibration(generator, sets, calibrate, train_sets=None, quantile=None, offset=None) -> tuple:
  """(report, LatentStats or None): the temperature fitted on the chunk logits of the `calibrate` engines,
  auto's threshold on their clip readings (confidence.fit_threshold) and the neutral-logit offset
  (confidence.fit_neutral_offset, unless `offset` is given); ECE before and after everywhere.
  With `train_sets` ({engine: training-group clips}), the familiar-voice gate too: latent statistics of
  those clips (familiarity.fit_stats) and the `quantile` of the `calibrate` engines' held-out clips'
  distances as its limit, with every engine's distances."""
  from a2e_jax.infer import confidence, familiarity

  logits = {e: chunk_logits(generator, clips, latents=True) for e, clips in sets.items()}
  fit = [logits[e][:3] for e in calibrate]
  temperature = confidence.fit_temperature(np.concatenate([f[0] for f in fit]),
                                           np.concatenate([f[1] for f in fit]))
  readings = [clip_readings(confidence.calibrated_probs(z, temperature), y, owner) for z, y, owner in fit]
  threshold = confidence.fit_threshold(np.concatenate([r[0] for r in readings]),
                                       np.concatenate([r[1] for r in readings]))
  if offset is None:  # clip ids made unique across the engines, so each clip averages only its own chunks
    offset = confidence.fit_neutral_offset(np.concatenate([f[0] for f in fit]),
                                           np.concatenate([f[2] + 100000 * k for k, f in enumerate(fit)]),
                                           np.concatenate([r[1] for r in readings]), temperature, threshold)
  report = {"temperature": temperature, "threshold": threshold, "neutral_offset": offset,
            "fitted_on": list(calibrate), "ece": {}}
  stats = None
  if train_sets:
    train = [chunk_logits(generator, clips, latents=True) for clips in train_sets.values()]
    stats = familiarity.fit_stats(np.concatenate([t[3] for t in train]),
                                  np.concatenate([clip_readings(*t[:3])[1] for t in train]))
    limit = familiarity.fit_limit(stats, np.concatenate([logits[e][3] for e in calibrate]), quantile)
    report["ood"] = {"distance": limit, "quantile": quantile, "file": familiarity.STATS_FILE,
                     "statistics_from": {e: f"{len(c)} clips of training groups"
                                         for e, c in train_sets.items()},
                     "limit_from": {e: f"{len(sets[e])} clips of held-out groups" for e in calibrate},
                     "distances": {}}
    for engine, (z, y, owner, means) in logits.items():
      labels = clip_readings(z, y, owner)[1]
      d = stats.distance(means)
      report["ood"]["distances"][engine] = {
        "percentiles_10_50_90_99": np.percentile(d, [10, 50, 90, 99]).round(2).tolist(),
        "familiar_neutral": float(np.mean(d[labels == 0] <= limit)) if (labels == 0).any() else None,
        "familiar_emotional": float(np.mean(d[labels != 0] <= limit)) if (labels != 0).any() else None}
  for engine, (z, y, owner, _) in logits.items():
    figures = {}
    for label, t in (("before", 1.0), ("after", temperature)):  # the temperature's calibration alone
      probs = confidence.calibrated_probs(z, t)
      clip_probs, clip_labels = clip_readings(probs, y, owner)
      figures[label] = {"chunk_ece": confidence.expected_calibration_error(probs, y),
                        "clip_ece": confidence.expected_calibration_error(clip_probs, clip_labels),
                        "chunk_accuracy": float(np.mean(probs.argmax(1) == y)),
                        "mean_confidence": float(probs.max(1).mean())}
    report["ece"][engine] = figures
  report["auto_on_clips"] = {}
  for engine, (z, y, owner, means) in logits.items():
    clip_probs, labels = clip_readings(confidence.calibrated_probs(z, temperature, offset), y, owner)
    familiar = np.ones(len(labels)) if stats is None else familiarity.trust(stats.distance(means), limit)
    report["auto_on_clips"][engine] = auto_figures(clip_probs, labels, threshold, familiar)
  return report, stats


def auto_figures(clip_probs, labels, threshold, familiar) -> dict:
  """What auto decides on whole clips (readings [c,E], emotions [c]) without and with the familiar-voice
  gate (`familiar` [c], familiarity.trust): the share of neutral clips read neutral (trust < 0.5), the
  share of emotional clips whose right reading is followed, and the raw reading's accuracy on them."""
  from a2e_jax.infer import confidence

  confident = confidence.trust(clip_probs, threshold)
  right = clip_probs.argmax(axis=1) == labels
  neutral, emotional = labels == 0, labels != 0
  out = {"neutral_clips": int(neutral.sum()), "emotional_clips": int(emotional.sum()),
         "raw_accuracy": float(right[emotional].mean()) if emotional.any() else None}
  for name, trust in (("no_gate", confident), ("gate", np.minimum(confident, familiar))):
    out[f"neutral_read_{name}"] = float(np.mean(trust[neutral] < 0.5)) if neutral.any() else None
    out[f"emotion_kept_{name}"] = (float(np.mean((trust[emotional] >= 0.5) & right[emotional]))
                                   if emotional.any() else None)
  return out


def real_speech(generators, face, path: str) -> dict:
  from eval_generate import jaw_opening_mm, lip_gap_mm

  from a2e_jax.audio import io
  from a2e_jax.core import schema
  from a2e_jax.infer import pauses

  if not os.path.isfile(path):
    return {"skipped": f"{path} is absent"}
  wav = io.load_audio(path)
  out = {}
  for name, generator, request in generators:
    result = generator(wav, schema.SAMPLE_RATE, emotion=request, blink="rate=20", seed=0)
    n = result.seq.num_frames
    rms = pauses.frame_rms(wav, n)
    silent = pauses.silent_stretches(rms)
    figures = rest_figures(face, result.coeffs, np.zeros(result.coeffs.shape[1]), silent)
    heard = int(np.argmax(result.speech_emotion))
    smile = [result.seq.channel_names.index(c) for c in ("mouthSmile_L", "mouthSmile_R")]
    brow = [result.seq.channel_names.index(c) for c in ("browDown_L", "browDown_R")]
    out[name] = {
      **rest_rates(figures),
      "jaw_envelope_correlation": float(np.corrcoef(jaw_opening_mm(face, result.coeffs), rms)[0, 1]),
      "lip_envelope_correlation": float(np.corrcoef(lip_gap_mm(face, result.coeffs), rms)[0, 1]),
      "heard": schema.EMOTIONS[heard], "heard_probability": float(result.speech_emotion[heard]),
      "neutral_probability": float(result.speech_emotion[schema.NEUTRAL]),
      "emotion_trust": result.emotion_trust,
      "mouth_smile_mean": float(result.coeffs[:, smile].mean()),
      "brow_down_mean": float(result.coeffs[:, brow].mean()),
    }
  return out


def alignment_error(engine: str = "flite", sentences: int = 24) -> dict:
  """Error of dtw_timing's borrowed phone times on an engine that reports its own: per sentence (one of
  the engine's voices in turn) espeak's phone starts carried over by DTW against the engine's true ones,
  for the phones the two sequences share in order; with a linear stretch of espeak's times as reference."""
  import difflib

  import scipy.signal

  from a2e_jax.core import schema
  from a2e_jax.data.synth import dtw_timing, engines, phonemes
  from a2e_jax.data.synth.sentences import SENTENCES

  voices_here = engines.engine_voices(engine)
  dtw, linear = [], []
  for i in range(sentences):
    text = SENTENCES[(37 * i) % len(SENTENCES)]
    speech = engines.get_engine(engine).speak(text, voices_here[i % len(voices_here)])
    wav = scipy.signal.resample_poly(speech.audio, schema.SAMPLE_RATE, speech.sample_rate)
    ref_wav, ref_phones = dtw_timing.espeak_reference(text)
    ref_starts = np.array([s for _, s in ref_phones])
    moved = dtw_timing.transfer_times(ref_wav, ref_starts, wav)
    stretched = ref_starts * (wav.size / ref_wav.size)
    bare = lambda phones: [phonemes.split_stress(n)[0] for n, _ in phones]  # noqa: E731
    ours, theirs = bare(ref_phones), bare(speech.phones)
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    for block in matcher.get_matching_blocks():
      for k in range(block.size):
        a, b = block.a + k, block.b + k
        if ours[a].startswith("_"):
          continue  # pauses have no onset to speak of
        truth = speech.phones[b][1]
        dtw.append(abs(moved[a] - truth))
        linear.append(abs(stretched[a] - truth))
  dtw, linear = np.array(dtw) * 1000, np.array(linear) * 1000
  return {"engine": engine, "sentences": sentences, "phones": int(dtw.size),
          "dtw_median_ms": float(np.median(dtw)), "dtw_mean_ms": float(dtw.mean()),
          "dtw_p90_ms": float(np.percentile(dtw, 90)), "linear_median_ms": float(np.median(linear)),
          "linear_p90_ms": float(np.percentile(linear, 90))}


def trained_engines(card: dict) -> set:
  """The engines the weights' corpus was made with (the card's data.engines; espeak-ng before it had one)."""
  return set(card.get("data", {}).get("engines") or {"espeak": None})


def get_classifier(path: str, groups: int):
  """The coefficient emotion classifier (trained on espeak training groups' truth on first use)."""
  from a2e_jax.eval import emotion_classifier

  if os.path.isfile(path):
    return emotion_classifier.load_classifier(path)
  clips = clip_set("espeak", groups, train=True)
  classifier = emotion_classifier.train_emotion_classifier(
    [{"coeffs": c["coeffs"], "beta0": c["beta0"], "emotion": c["emotion"]} for c in clips],
    clips[0]["coeffs"].shape[1])
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  classifier.save(path)
  return classifier


def write_card(folder: str, results: dict, calibration: dict | None, command: str) -> str:
  """Stores the emotion calibration and these figures (`voices`) in the weights' model_card.json."""
  path = os.path.join(folder, "model_card.json")
  with open(path) as f:
    card = json.load(f)
  if calibration:
    card["emotion_calibration"] = calibration
  card["voices"] = {"command": command, **{k: v for k, v in results.items() if k != "seconds"}}
  with open(path, "w") as f:
    json.dump(card, f, indent=2)
  return path


def table(results: dict) -> str:
  keys = ("lve_mm2", "lve_speech_mm2", "neutral_read_rate_wide", "neutral_read_rate_face", "emotion_accuracy",
          "override_accuracy", "rest_in_silence", "rest_after_3_frames", "jaw_envelope_correlation")
  lines = ["engine    setting " + " ".join(f"{k[:13]:>13}" for k in keys)]
  for engine, by_setting in results["engines"].items():
    for setting, m in by_setting.items():
      cells = [m.get(k) for k in keys]
      lines.append(f"{engine:<9} {setting:<7} " + " ".join(
        f"{'-':>13}" if v is None else f"{v:>13.3f}" for v in cells))
  if results.get("calibration"):
    lines.append("calibration: " + json.dumps(results["calibration"]))
  lines.append("real speech: " + json.dumps(results["real_speech"]))
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", help="a training run or weights folder (default: the demo weights)")
  parser.add_argument("--engines", default="espeak,flite,festival", help="engines to score (installed ones)")
  parser.add_argument("--groups", type=int, default=4, help="groups (speaker, sentence) per engine (x22)")
  parser.add_argument("--neutral-groups", type=int, default=24,
                      help="groups per engine whose neutral rendition alone scores the neutral-read rate")
  parser.add_argument("--calibrate", help="engines whose clips fit the emotion temperature and auto's "
                      "threshold, e.g. espeak,flite (held-out groups of the engines the weights trained on)")
  parser.add_argument("--threshold", type=float, help="auto's confidence threshold (default: the card's)")
  parser.add_argument("--neutral-offset", type=float, help="auto's offset on the neutral logit (default: "
                      "fitted with --calibrate, else the card's; 0: none)")
  parser.add_argument("--ood-groups", type=int, default=12, help="training groups per --calibrate engine "
                      "(x22 clips) whose emotion latents give the familiar-voice gate's statistics; "
                      "0: no gate")
  parser.add_argument("--ood-quantile", type=float, default=None,
                      help="the gate's limit: this quantile of the --calibrate engines' held-out clips' "
                      "distances (default familiarity.DEFAULT_QUANTILE)")
  parser.add_argument("--calibrate-only", action="store_true",
                      help="stop after the calibration: its figures, with auto's decisions on whole clips "
                      "with and without the familiar-voice gate (no generation, no card)")
  parser.add_argument("--distance", type=float, help="the gate's limit (default: the card's; inf: off)")
  parser.add_argument("--ablations", action="store_true",
                      help="also score the pause gate alone (gate) and the auto fallback alone (auto)")
  parser.add_argument("--alignment", action="store_true",
                      help="only measure the DTW phone-time transfer (dtw_timing.py) against Flite's times")
  parser.add_argument("--real-speech", default=REAL_SPEECH, help="a real recording (default ../shared's)")
  parser.add_argument("--write-card", action="store_true",
                      help="store the fitted temperature and threshold and the figures in the weights' "
                      "model_card.json")
  parser.add_argument("--classifier", default=os.path.join(REPO, "runs", "voices_classifier.npz"))
  parser.add_argument("--out", default=os.path.join(REPO, "runs", "eval_voices.json"))
  args = parser.parse_args(argv)
  sys.path.insert(0, os.path.join(REPO, "tools"))
  sys.path.insert(0, REPO)
  from eval_generate import write_json

  from a2e_jax.data.synth import engines
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.infer import confidence, familiarity
  from a2e_jax.infer import weights as weights_lib
  from a2e_jax.infer.generate import Generator

  started = time.perf_counter()
  if args.alignment:
    result = alignment_error()
    print(json.dumps(result, indent=1))
    write_json(args.out, result)
    return 0
  usable, missing = engines.available_engines([e.strip() for e in args.engines.split(",") if e.strip()])
  for name, why in missing.items():
    print(f"skipped engine {name}: {why}", file=sys.stderr)
  weights = weights_lib.load_weights(args.checkpoint)
  face = resolve_model(weights.face_model).to_numpy()
  heard = trained_engines(weights.card)
  sets = {engine: clip_set(engine, args.groups, heard=engine in heard) for engine in usable}
  results = {"engines_used": usable, "engines_missing": missing, "engines_trained": sorted(heard),
             "groups": args.groups, "engines": {}}
  stats = None
  if args.calibrate:
    raw = Generator(weights, emotion_threshold=0.0, pause_threshold=0.0)
    raw.temperature, raw.neutral_offset = 1.0, 0.0
    calibrate = [e.strip() for e in args.calibrate.split(",")]
    train_sets = {e: clip_set(e, args.ood_groups, train=True) for e in calibrate} if args.ood_groups else None
    quantile = familiarity.DEFAULT_QUANTILE if args.ood_quantile is None else args.ood_quantile
    scored = dict(sets)
    if args.calibrate_only:  # the neutral-read rate on more neutral renditions, as the full run has it
      scored.update({f"{e} neutral": clip_set(e, args.neutral_groups, neutral_only=True, heard=e in heard)
                     for e in usable})
    if os.path.isfile(args.real_speech):  # auto's decision on a real voice too (read as neutral speech)
      from a2e_jax.audio import io

      scored["real"] = [{"wav": io.load_audio(args.real_speech), "emotion": 0}]
    results["calibration"], stats = calibration(raw, scored, calibrate, train_sets, quantile,
                                                args.neutral_offset)
    if args.calibrate_only:
      write_json(args.out, results)
      print(json.dumps({k: v for k, v in results["calibration"].items() if k != "ece"}, indent=1))
      return 0
    weights.card["emotion_calibration"] = {k: results["calibration"][k] for k in
                                           ("temperature", "threshold", "neutral_offset", "fitted_on",
                                            "ece", "ood")
                                           if k in results["calibration"]}
  threshold = confidence.card_threshold(weights.card) if args.threshold is None else args.threshold
  before = Generator(weights, emotion_threshold=0.0, pause_threshold=0.0)
  before.temperature, before.neutral_offset = 1.0, 0.0
  after = Generator(weights, emotion_threshold=threshold, emotion_distance=args.distance)
  if args.neutral_offset is not None:
    after.neutral_offset = args.neutral_offset
  if stats is not None:  # fitted just now, not yet beside the weights
    after.familiar = stats
    fitted = results["calibration"]["ood"]["distance"]
    after.emotion_distance = fitted if args.distance is None else args.distance
  results["distance"] = after.emotion_distance if after.familiar is not None else None
  results["temperature"], results["threshold"] = after.temperature, threshold
  results["neutral_offset"] = after.neutral_offset
  settings = [("before", before, "speech"), ("after", after, None)]
  if args.ablations:
    gate_only = Generator(weights, emotion_threshold=0.0)
    auto_only = Generator(weights, emotion_threshold=threshold, pause_threshold=0.0,
                          emotion_distance=args.distance)
    auto_only.familiar, auto_only.emotion_distance = after.familiar, after.emotion_distance
    auto_only.neutral_offset = after.neutral_offset
    settings[1:1] = [("gate", gate_only, "speech"), ("auto", auto_only, None)]
  classifier = get_classifier(args.classifier, 20)
  for engine, clips in sets.items():
    results["engines"][engine] = evaluate_engine(settings, clips, face, classifier)
    neutral = clip_set(engine, args.neutral_groups, neutral_only=True, heard=engine in heard)
    for setting, rate in neutral_reads(settings, neutral).items():
      results["engines"][engine][setting]["neutral_read_rate_wide"] = rate
      results["engines"][engine][setting]["neutral_clips_wide"] = len(neutral)
  results["real_speech"] = real_speech(settings, face, args.real_speech)
  results["seconds"] = time.perf_counter() - started
  if args.write_card:
    command = "python tools/eval_voices.py " + " ".join(argv if argv is not None else sys.argv[1:])
    fitted = weights.card.get("emotion_calibration")
    folder = args.checkpoint or weights_lib.DEMO_DIR
    if stats is not None:
      familiarity.save_stats(folder, stats)
    path = write_card(folder, results, fitted, command)
    print(f"wrote the figures into {path}")
  write_json(args.out, results)
  print(table(results))
  return 0


if __name__ == "__main__":
  sys.exit(main())
