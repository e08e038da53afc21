"""Quality of generation as users get it (chunked, with its controls), for the demo weights' model card.

  python tools/eval_generate.py --data-dir data/tfds                   # the bundled demo weights
  python tools/eval_generate.py --checkpoint runs/demo --data-dir data/tfds --max-clips 96

On held-out clips of the built-in corpus (data/pipeline.py's eval iterator), through `a2e_jax.eval`'s
`evaluate` with an emotion classifier trained on ground truth:
  generate   the Generator's chunked path (emotion from the speech; overrides as label keys)
  one_pass   the network on whole clips in one call (eval.evaluate.ModelPredictor), for reference
  beta0      the resting face only (the baseline of the training issue)
giving lip vertex error, emotion accuracy, override (swap) accuracy, blink precision/recall against the
control, identity error; and, on training-style pairs, the override's lip error against the same sentence
really spoken in the target emotion (`lve_swap_true_ratio`, eval.evaluate_swap_pairs). Then:
  intensity  per non-neutral clip, the distance of its own emotion at intensity 1 and 3 from neutral
  real       ../shared/audio/real_speech_en_stereo_8s.wav: Pearson correlation of the mouth opening with the
             speech's RMS envelope per 25 fps frame (the samples of that frame), for the jaw opening (nose
             tip to chin, landmarks 30/8, mm) and the lip gap (inner lip centres 62/66, mm); blinks
  envelope   with --corpus: the same correlations of the ground truth and of generation on held-out corpus
             clips (their wavs) — the truth's own figure is the most a model trained on it can be expected
             to reach. The lip gap's is low (0.45–0.56): the lips close for /p b m/ inside loud speech, as
             they should, and every such frame counts against it; the jaw's is 0.59–0.64.
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
UPPER_INNER_LIP, LOWER_INNER_LIP = 62, 66  # 68-landmark scheme, 0-based
NOSE_TIP, CHIN = 30, 8


class GeneratePredictor:
  """`eval.evaluate`'s predictor interface over the Generator's chunked path, one clip at a time."""

  def __init__(self, generator):
    self.generator = generator

  def _clip(self, view, r, keys, transition_s):
    n = int(view["mask"][r].sum())
    chunks, _ = self.generator.window_chunks(np.asarray(view["mel"][r, :n]))
    info = {}
    eye = np.asarray(view["eye"][r, :n])
    coeffs = np.concatenate(list(self.generator.run(chunks, n, keys=keys, eye_te=lambda _: eye,
                                                    beta0_k=view["beta0"][r], transition_s=transition_s,
                                                    info=info)))
    return coeffs, info.get("speech_emotion")

  def _all(self, view, keys_of_row, transition_s=0.5):
    b, t = view["mask"].shape
    out = np.zeros((b, t, len(self.generator.channel_names)), np.float32)
    logits = np.zeros((b, self.generator.weights.config.num_emotions), np.float32)
    for r in range(b):
      if view["mask"][r].sum() == 0:
        continue
      coeffs, probs = self._clip(view, r, keys_of_row(r), transition_s)
      out[r, :len(coeffs)] = coeffs
      if probs is not None:
        logits[r] = np.log(np.maximum(probs, 1e-12))
    return out, logits

  def __call__(self, view):
    from a2e_jax.infer.controls import EmotionKey

    return self._all(view, lambda r: [EmotionKey()])

  def with_emotion(self, view, label_b, intensity_b):
    return self.with_label(view, label_b, intensity_b)

  def with_label(self, view, label_b, intensity_b):
    """Labels [B] (one per clip) or [B,T] (a per-frame schedule, switched without a ramp as eval asks)."""
    from a2e_jax.core import schema
    from a2e_jax.infer.controls import EmotionKey

    label_b = np.asarray(label_b)

    def keys(r):
      labels_t = label_b[r, :int(view["mask"][r].sum())] if label_b.ndim == 2 else label_b[r:r + 1]
      starts = np.flatnonzero(np.r_[True, labels_t[1:] != labels_t[:-1]])
      return [EmotionKey(time_s=float(t) / schema.FPS, intensity=float(intensity_b[r]),
                         weights=tuple(float(i == int(labels_t[t])) for i in range(len(schema.EMOTIONS))))
              for t in starts]

    return self._all(view, keys, transition_s=0.0)[0]


def _batches(data_cfg, split, batch_size, max_clips):
  """The first `max_clips` clips of `split` (0: all), batch by batch as numpy."""
  import jax

  from a2e_jax.data import pipeline
  from a2e_jax.eval import runs

  for i, batch in enumerate(pipeline.make_eval_iterator(data_cfg, split, batch_size, runs.one_device_mesh())):
    if max_clips and i * batch_size >= max_clips:
      return
    yield {k: np.asarray(v) for k, v in jax.device_get(batch).items()}


def held_out(generator, data_cfg, face, classifier, splits, max_clips, batch_size=16):
  """{split: {predictor: metrics}} from eval.evaluate on the same clips, plus the override against the
  true rendition (eval.evaluate_swap_pairs) on the same training-style windows."""
  from a2e_jax.eval import evaluate, runs
  from a2e_jax.models.a2enet import A2ENet

  network = evaluate.ModelPredictor(A2ENet(generator.weights.config), generator.weights.params)
  predictors = {"generate": GeneratePredictor(generator), "one_pass": network,
                "beta0": evaluate.Beta0Predictor()}
  results = {}
  for split in splits:
    results[split] = {}
    for name, predictor in predictors.items():
      started = time.perf_counter()
      batches = _batches(data_cfg, split, batch_size, max_clips)
      metrics = evaluate.evaluate(predictor, batches, face, classifier, None, generator.channel_names, name)
      metrics.pop("confusion", None)
      pairs = runs.pair_batches(data_cfg, split, batch_size, max(1, max_clips // batch_size),
                                runs.one_device_mesh())
      metrics.update(evaluate.evaluate_swap_pairs(predictor, pairs, face))
      metrics["seconds"] = time.perf_counter() - started
      results[split][name] = metrics
  return results


def chunk_sweep(weights, data_cfg, face, split, sizes, max_clips, batch_size=16):
  """{chunk frames: lip vertex error (mm²)} of the generate path on `split` (emotion from the speech)."""
  from a2e_jax.eval import evaluate
  from a2e_jax.infer.generate import Generator

  lve = {}
  for size in sizes:
    predictor = GeneratePredictor(Generator(weights, size, size // 4))
    batches = _batches(data_cfg, split, batch_size, max_clips)
    names = predictor.generator.channel_names
    lve[int(size)] = evaluate.evaluate(predictor, batches, face, None, None, names, f"chunk{size}")["lve_mm2"]
  return lve


def intensity_check(generator, data_cfg, split, max_clips, batch_size=16):
  """Mean distance (coefficient L2 per frame, eye channels aside) from neutral at intensity 1 and 3."""
  from a2e_jax.core import schema

  predictor = GeneratePredictor(generator)
  eye_free = np.array([not n.startswith("eye") for n in generator.channel_names])
  d1, d3 = [], []
  for view in _batches(data_cfg, split, batch_size, max_clips):
    rows = np.flatnonzero((view["mask"].sum(1) > 0) & (view["emotion"] != schema.NEUTRAL))
    if not rows.size:
      continue
    neutral = predictor.with_label(view, np.zeros_like(view["emotion"]), np.ones(len(view["emotion"])))
    for level, store in ((1, d1), (3, d3)):
      pred = predictor.with_label(view, view["emotion"], np.full(len(view["emotion"]), level))
      for r in rows:
        n = int(view["mask"][r].sum())
        store.append(float(np.linalg.norm((pred[r, :n] - neutral[r, :n])[:, eye_free], axis=1).mean()))
  d1, d3 = np.array(d1), np.array(d3)
  return {"clips": int(d1.size), "distance_intensity1": float(d1.mean()),
          "distance_intensity3": float(d3.mean()), "fraction_3_farther": float(np.mean(d3 > d1))}


def _vertical_gap_mm(face, coeffs_tk, upper: int, lower: int) -> np.ndarray:
  from a2e_jax.eval import metrics

  index = np.asarray(face.landmarks)[[upper, lower]]
  vertices = metrics.region_vertices(face, index, coeffs_tk)  # [T,2,3] in units of 10 cm
  return (vertices[:, 0, 1] - vertices[:, 1, 1]) * 100.0


def lip_gap_mm(face, coeffs_tk) -> np.ndarray:
  """[T] vertical distance between the inner lip centre landmarks, in mm."""
  return _vertical_gap_mm(face, coeffs_tk, UPPER_INNER_LIP, LOWER_INNER_LIP)


def jaw_opening_mm(face, coeffs_tk) -> np.ndarray:
  """[T] vertical distance from the nose tip to the chin, in mm (grows as the jaw drops)."""
  return _vertical_gap_mm(face, coeffs_tk, NOSE_TIP, CHIN)


def _lagged_correlation(follower_t, leader_t, lag: int) -> float:
  """Pearson correlation of follower[t + lag] with leader[t]."""
  if lag < 0:
    return _lagged_correlation(leader_t, follower_t, -lag)
  return float(np.corrcoef(follower_t[lag:], leader_t[:leader_t.size - lag])[0, 1])


def real_speech(generator, face, path=REAL_SPEECH):
  """Mouth opening against the speech envelope, and blinks, on a real recording."""
  from a2e_jax.audio import io
  from a2e_jax.core import schema
  from a2e_jax.eval import metrics
  from a2e_jax.infer import pauses

  if not os.path.isfile(path):
    return {"skipped": f"{path} is absent"}
  wav = io.load_audio(path)
  result = generator(wav, schema.SAMPLE_RATE, blink="rate=20", seed=0)
  frames = result.seq.num_frames
  rms = pauses.frame_rms(wav, frames)
  gap, jaw = lip_gap_mm(face, result.coeffs), jaw_opening_mm(face, result.coeffs)
  blink = [generator.channel_names.index(n) for n in ("eyeBlink_L", "eyeBlink_R")]
  counts = metrics.blink_counts(result.coeffs[:, blink].mean(1), result.seq.eye[:, :2].mean(1))
  precision, recall = metrics.precision_recall(counts)
  lagged = {lag: _lagged_correlation(gap, rms, lag) for lag in (-2, -1, 0, 1, 2)}
  jaw_lagged = {lag: _lagged_correlation(jaw, rms, lag) for lag in (-2, -1, 0, 1, 2)}
  quiet = rms < 0.1 * rms.max()
  heard = int(np.argmax(result.speech_emotion))
  return {"file": os.path.basename(path), "frames": frames,
          "jaw_envelope_correlation": jaw_lagged[0], "jaw_envelope_correlation_by_lag": jaw_lagged,
          "lip_envelope_correlation": lagged[0], "lip_envelope_correlation_by_lag": lagged,
          "jaw_opening_mm_speech": float(jaw[~quiet].mean()),
          "jaw_opening_mm_pauses": float(jaw[quiet].mean()),
          "lip_gap_mm_speech": float(gap[~quiet].mean()), "lip_gap_mm_pauses": float(gap[quiet].mean()),
          "pause_frames": int(quiet.sum()), "blink_precision": precision, "blink_recall": recall,
          "heard_emotion": schema.EMOTIONS[heard], "heard_probability": float(result.speech_emotion[heard])}


def corpus_envelope(generator, face, corpus_dir, splits, clips_per_split=48):
  """{split: mean correlations of jaw opening and lip gap with the RMS envelope, for the ground truth and
  for generation} over `clips_per_split` clips of each split of the corpus in `corpus_dir` (evenly spaced in
  its manifest), from their wavs; None when `corpus_dir` holds no corpus."""
  import soundfile

  from a2e_jax.core import schema
  from a2e_jax.formats.sequence import load_npz
  from a2e_jax.infer import pauses

  manifest = os.path.join(corpus_dir or "", "manifest.jsonl")
  if not corpus_dir or not os.path.isfile(manifest):
    return None
  with open(manifest) as f:
    records = [json.loads(line) for line in f]
  out = {}
  for split in splits:
    in_split = [r for r in records if r["split"] == split]
    picks = np.linspace(0, len(in_split) - 1, min(clips_per_split, len(in_split))).astype(int)
    chosen = [in_split[i] for i in picks]
    rows = []
    for record in chosen:
      wav, rate = soundfile.read(os.path.join(corpus_dir, record["audio"]), dtype="float32")
      assert rate == schema.SAMPLE_RATE, record["audio"]  # frame_rms counts 640 samples a frame
      truth = load_npz(os.path.join(corpus_dir, record["coeffs"]))[0].coeffs
      made = generator(wav, rate, blink="none", seed=0).coeffs[:len(truth)]
      rms = pauses.frame_rms(wav, len(made))
      rows.append([_lagged_correlation(measure(face, c[:len(made)]), rms, 0)
                   for c in (truth, made) for measure in (jaw_opening_mm, lip_gap_mm)])
    mean = np.mean(rows, axis=0)
    out[split] = {"clips": len(rows), "truth_jaw": float(mean[0]), "truth_lip": float(mean[1]),
                  "generate_jaw": float(mean[2]), "generate_lip": float(mean[3])}
  return out


def quality(weights, data_cfg, splits=("val_speaker", "val_sentence"), max_clips=96, classifier_path=None,
            chunk_frames=None, corpus_dir=None):
  """Every number of the model card's quality section."""
  from a2e_jax.eval.runs import get_classifier
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.infer.generate import Generator

  generator = Generator(weights, chunk_frames)
  face = resolve_model(weights.face_model).to_numpy()
  classifier_path = classifier_path or os.path.join(REPO, "runs", "emotion_classifier.npz")
  classifier = get_classifier(classifier_path, data_cfg, weights.config.num_coeffs)
  return {
    "held_out": held_out(generator, data_cfg, face, classifier, splits, max_clips),
    "intensity": intensity_check(generator, data_cfg, splits[0], max_clips),
    "real_speech": real_speech(generator, face),
    "corpus_envelope": corpus_envelope(generator, face, corpus_dir, splits),
    "chunk_frames": generator.chunk, "overlap_frames": generator.overlap,
  }


def write_json(path: str, results: dict) -> None:
  """Writes `results` to `path` as indented JSON, making its folder."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "w") as f:
    json.dump(results, f, indent=2)


def table(results: dict) -> str:
  keys = ("lve_mm2", "emotion_accuracy", "emotion_swap_accuracy", "lve_swap_true_ratio", "blink_precision",
          "blink_recall", "identity_error", "audio_emotion_accuracy")
  lines = ["split         predictor " + " ".join(f"{k[:14]:>14}" for k in keys)]
  for split, by_name in results["held_out"].items():
    for name, m in by_name.items():
      lines.append(f"{split:<13} {name:<9} " + " ".join(f"{m.get(k, float('nan')):>14.3f}" for k in keys))
  lines.append(f"intensity: {json.dumps(results['intensity'])}")
  real = {k: v for k, v in results["real_speech"].items() if "lag" not in k}
  lines.append(f"real speech: {json.dumps(real)}")
  if results.get("corpus_envelope"):
    lines.append(f"envelope correlation on corpus clips: {json.dumps(results['corpus_envelope'])}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--checkpoint", help="a training run or weights folder (default: the demo weights)")
  parser.add_argument("--data-dir", default="data/tfds", help="TFDS data dir holding --dataset")
  parser.add_argument("--dataset", default="a2e_synthetic/wide", help="held-out splits to score (default: "
                      "the demo weights' corpus, `a2e data build --synthetic wide`)")
  parser.add_argument("--max-clips", type=int, default=96, help="held-out clips per split (0: all)")
  parser.add_argument("--classifier", help="emotion classifier .npz (trained on first use)")
  parser.add_argument("--corpus", help="the corpus folder (a2e data synth) for the envelope correlations of "
                                       "held-out clips' truth and generation")
  parser.add_argument("--chunk-frames", type=int, help="inference chunk (default: the weights' own)")
  parser.add_argument("--sweep", help="only compare chunk sizes on val_sentence, e.g. 32,64,128")
  parser.add_argument("--out", default="runs/eval_generate.json")
  args = parser.parse_args(argv)
  sys.path.insert(0, REPO)
  from a2e_jax.data.pipeline import data_config
  from a2e_jax.infer.weights import load_weights

  data_cfg = data_config()
  data_cfg.data_dir, data_cfg.dataset = args.data_dir, args.dataset
  if args.sweep:
    from a2e_jax.face.registry import resolve_model

    weights = load_weights(args.checkpoint)
    sizes = [int(x) for x in args.sweep.split(",")]
    print(chunk_sweep(weights, data_cfg, resolve_model(weights.face_model).to_numpy(), "val_sentence", sizes,
                      args.max_clips))
    return 0
  results = quality(load_weights(args.checkpoint), data_cfg, max_clips=args.max_clips,
                    classifier_path=args.classifier, chunk_frames=args.chunk_frames, corpus_dir=args.corpus)
  write_json(args.out, results)
  print(table(results))
  return 0


if __name__ == "__main__":
  sys.exit(main())
