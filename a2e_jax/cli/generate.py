"""`a2e generate` (speech -> coefficient files and video, one file or a batch) and `a2e demo`."""

import argparse
import os
import time

import soundfile

from a2e_jax.core import schema
from a2e_jax.core.errors import UserError
from a2e_jax.core.outputs import check_output_file
from a2e_jax.formats.files import in_space

GENERATE_EPILOG = """\
examples:
  a2e generate --audio speech.wav --video
  a2e generate --audio speech.wav --emotion happy --intensity 3 --export npz,arkit-csv,glb
  a2e generate --audio speech.wav --emotion-schedule "0:neutral,3.5:happy@3" --blink rate=25
  a2e generate --audio speech.wav --ref first_frame.mat --bfm BFM_model_front.mat --export sadtalker
  a2e generate --audio clips/ --out results/            # a folder (or a .jsonl/.txt manifest): batch mode
See docs/generate.md for every control and what each export holds."""


def register(subparsers) -> None:
  parser = subparsers.add_parser(
    "generate", help="speech -> expression coefficients (all export formats) and a video",
    description="Generate a talking face from speech with the bundled demo weights (or --checkpoint): "
                "coefficient files for SadTalker, PIRenderer, Live Link Face, glTF, our .npz, and a video.",
    epilog=GENERATE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--audio", required=True, metavar="PATH",
                      help="speech file (wav, flac, mp3, m4a, ...), or a folder or .jsonl/.txt manifest")
  parser.add_argument("--out", default="a2e_out", metavar="DIR", help="output folder (default a2e_out)")
  _add_controls(parser)
  _add_outputs(parser)
  parser.add_argument("--no-progress", action="store_true", help="no progress bar in batch mode")
  parser.set_defaults(func=run_generate)

  demo = subparsers.add_parser(
    "demo", help="speak an example sentence with the built-in voice and face: every format and an mp4",
    description="Synthesises a sentence with the built-in speech corpus code, generates its coefficients "
                "with the demo weights, and writes every export format it can and a video with sound.")
  demo.add_argument("--out", default="a2e_demo", metavar="DIR", help="output folder (default a2e_demo)")
  demo.add_argument("--text", default=DEMO_TEXT, help="the sentence to speak")
  demo.add_argument("--voice-emotion", default="happy", help="emotion of the synthetic voice (default happy)")
  demo.add_argument("--voice-intensity", type=int, default=2, choices=(1, 2, 3), help="its intensity")
  demo.add_argument("--speaker", default=DEMO_SPEAKER,
                    help=f"built-in speaker index (default {DEMO_SPEAKER}, one the demo weights never heard)")
  _add_controls(demo)
  _add_outputs(demo, demo=True)
  demo.set_defaults(func=run_demo)


DEMO_TEXT = "Hello! I am a talking face, and I can speak with feeling from any voice you give me."
DEMO_SPEAKER = "6"  # held out of the default corpus's training split


def _add_controls(parser) -> None:
  from a2e_jax.infer import confidence, pauses

  emotion = parser.add_argument_group("emotion (default: auto, from the speech where the reading is sure)")
  choice = emotion.add_mutually_exclusive_group()
  choice.add_argument("--emotion", metavar="E",
                      help="neutral, angry, contempt, disgusted, fear, happy, sad, surprised; a blend "
                           "happy=0.7+sad=0.3; auto (heard in the speech, neutral when unsure; the default); "
                           "or speech (heard in the speech, however unsure)")
  choice.add_argument("--emotion-from", metavar="CLIP", help="speak with the emotion of another audio clip")
  choice.add_argument("--emotion-schedule", metavar="S",
                      help='emotion over time: "0:neutral,3.5:happy@3,8:speech" (seconds:emotion@intensity)')
  emotion.add_argument("--intensity", type=float, metavar="I", help="0..3 for --emotion (default 2)")
  emotion.add_argument("--transition", type=float, default=0.5, metavar="S",
                       help="seconds each schedule change takes (default 0.5)")
  emotion.add_argument("--emotion-threshold", type=float, metavar="P",
                       help="auto follows the speech's emotion only where its calibrated probability "
                            "reaches P, else is neutral (default: the weights' fitted threshold, "
                            f"{confidence.DEFAULT_THRESHOLD} without one; 0: always)")
  emotion.add_argument("--emotion-distance", type=float, metavar="D",
                       help="auto follows the speech's emotion only where the voice is familiar: its "
                            "emotion latent within Mahalanobis distance D of the training voices' "
                            "(default: the weights' calibrated limit, no gate without one; inf: off)")
  face = parser.add_argument_group("face")
  face.add_argument("--ref", metavar="FILE", help="identity: a SadTalker/Deep3DFaceRecon first-frame .mat or "
                                                  "our .npz; the output keeps its resting expression (β0)")
  face.add_argument("--blink", default="auto", metavar="B",
                    help="auto (natural), none, rate=N (per minute), or a reference .npz/.csv (default auto)")
  face.add_argument("--gaze", default="auto", metavar="G", help="auto, still, or a reference .npz/.csv")
  face.add_argument("--pose", default="still", metavar="P", help="still, or a reference file's pose track")
  face.add_argument("--seed", type=int, default=0, help="seed of the random blinks and gaze (default 0)")
  face.add_argument("--pause-threshold", type=float, default=pauses.DEFAULT_THRESHOLD, metavar="F",
                    help="lips rest in pauses: frames quieter than F x the loudest frame's level, 3 or more "
                         f"in a row (default {pauses.DEFAULT_THRESHOLD}; 0 turns the gate off)")
  net = parser.add_argument_group("network")
  net.add_argument("--checkpoint", metavar="DIR", help="a training run's --workdir (default: demo weights)")
  net.add_argument("--chunk-frames", type=int, metavar="N", help="frames per inference chunk")
  net.add_argument("--overlap-frames", type=int, metavar="N", help="frames shared by neighbouring chunks")


def _add_outputs(parser, demo: bool = False) -> None:
  out = parser.add_argument_group("outputs")
  out.add_argument("--export", default="auto" if not demo else "all", metavar="F",
                   help="comma-separated: sadtalker, pirenderer, npz, arkit-csv, glb, or all; default: every "
                        "format that needs no missing model (sadtalker/pirenderer need a BFM model)")
  out.add_argument("--model", default="builtin", metavar="M",
                   help="output face model: builtin, ict, bfm or a path (npz/glb space, video mesh)")
  out.add_argument("--bfm", metavar="FILE", help="BFM_model_front.mat (or a converted .npz) for the "
                                                 "sadtalker/pirenderer exports and .mat references")
  if demo:
    out.add_argument("--no-video", action="store_true", help="skip the mp4")
  else:
    out.add_argument("--video", nargs="?", const="auto", metavar="OUT.mp4",
                     help="also render a video with the audio (default name: next to the exports)")
  out.add_argument("--ref-image", metavar="PNG", help="portrait photo to animate in the video")
  out.add_argument("--size", type=int, default=256, help="video frame size in pixels (default 256)")


def _controls(args, overrides=None) -> dict:
  values = {"ref": args.ref, "emotion": args.emotion, "intensity": args.intensity,
            "emotion_from": args.emotion_from, "emotion_schedule": args.emotion_schedule,
            "blink": args.blink, "gaze": args.gaze, "pose": args.pose, "seed": args.seed}
  values.update(overrides or {})
  values["transition_s"] = args.transition
  return values


def _prepare(args, skip_unavailable: bool):
  """(generator, Spaces, formats, skipped) — everything that can fail before any audio is read."""
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.face.registry import resolve_model
  from a2e_jax.infer import outputs
  from a2e_jax.infer.generate import cached_generator
  from a2e_jax.render.api import check_size

  if os.path.exists(args.out) and not os.path.isdir(args.out):
    raise UserError(f"--out {args.out!r} is a file; a2e {args.command} writes a folder of outputs there")
  check_output_file(os.path.join(args.out, "x"), "--out")  # no file among its parents
  check_size(args.size)
  if getattr(args, "video", None) not in (None, "auto"):
    if not args.video.lower().endswith(".mp4"):
      raise UserError(f"--video {args.video!r}: videos are written as .mp4; name the file *.mp4")
    check_output_file(args.video, "--video")
  generator = cached_generator(args.checkpoint, args.chunk_frames, args.overlap_frames,
                               args.emotion_threshold, args.pause_threshold, args.emotion_distance)
  network_model = resolve_model(generator.weights.face_model)
  output_model = network_model if args.model == generator.weights.face_model else resolve_model(args.model)
  spaces = outputs.Spaces(network_model, output_model, outputs.find_bfm(args.bfm))
  auto = args.export == "auto"
  formats = outputs.parse_formats("all" if auto else args.export)
  formats, skipped = outputs.check_formats(formats, spaces, skip_unavailable or auto)
  return generator, spaces, formats, skipped


def _one(generator, spaces, formats, audio, stem, args, video_path, controls_):
  """Generates one clip and writes its files; returns {format: path}."""
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.infer import outputs

  if args.ref_image and not controls_.get("ref"):
    # The portrait's own expression is the reference β0: fit it first (its .npz is kept beside the outputs).
    controls_ = dict(controls_, ref=_portrait_reference(args.ref_image, spaces.network_model, stem))
  result = generator(audio, bfm_model=spaces.bfm_model, **controls_)
  os.makedirs(os.path.dirname(os.path.abspath(stem)), exist_ok=True)
  written = outputs.write_exports(result.seq, stem, formats, spaces)
  if video_path:
    seq = in_space(result.seq, spaces.output_model.channel_names, spaces.network_model, spaces.output_model,
                   spaces.output_model.name, "the video")
    written["video"] = outputs.write_video(video_path, seq, spaces.output_model, audio, args.ref_image,
                                           args.size)
  return written, result


def _portrait_reference(image: str, model, stem: str) -> str:
  from a2e_jax.fit.outputs import write_npz
  from a2e_jax.fit.portrait import fit_portrait

  path = stem + ".portrait.npz"
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  write_npz(path, model, fit_portrait(model, image))
  return path


def run_generate(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.infer import batch

  generator, spaces, formats, skipped = _prepare(args, skip_unavailable=False)
  if batch.is_batch(args.audio):
    if args.video not in (None, "auto"):
      raise UserError("--video takes no file name in batch mode; videos go next to each clip's exports")
    items = batch.read_items(args.audio)

    def process(item):
      stem = os.path.join(args.out, item.stem)
      video = stem + ".mp4" if args.video else None
      written, _ = _one(generator, spaces, formats, item.audio, stem, args, video,
                        _controls(args, item.overrides))
      return written

    report = batch.run_batch(items, process, args.out, progress=not args.no_progress)
    print(f"{report['ok']} of {len(items)} clips done, {report['failed']} failed; report in "
          f"{os.path.join(args.out, batch.REPORT)}")
    _print_skipped(skipped)
    return 1 if report["failed"] else 0
  stem = os.path.join(args.out, os.path.splitext(os.path.basename(args.audio))[0])
  video = (stem + ".mp4" if args.video == "auto" else args.video) if args.video else None
  started = time.perf_counter()
  written, result = _one(generator, spaces, formats, args.audio, stem, args, video, _controls(args))
  _report(result, written, time.perf_counter() - started)
  _print_skipped(skipped)
  return 0


def run_demo(args) -> int:
  # Deferred: the command's packages load JAX, TFDS or SciPy, which `a2e --help` must not.
  from a2e_jax.data.synth.utterance import synthesize_utterance

  started = time.perf_counter()
  generator, spaces, formats, skipped = _prepare(args, skip_unavailable=True)
  os.makedirs(args.out, exist_ok=True)
  speaker = int(args.speaker) if args.speaker.isdigit() else args.speaker
  utterance = synthesize_utterance(args.text, speaker, args.voice_emotion, args.voice_intensity, seed=0)
  audio = os.path.join(args.out, "demo.wav")
  soundfile.write(audio, utterance.wav, schema.SAMPLE_RATE, subtype="PCM_16")
  print(f"spoke {utterance.wav.size / schema.SAMPLE_RATE:.1f} s ({args.voice_emotion} voice) -> {audio}")
  video = None if args.no_video else os.path.join(args.out, "demo.mp4")
  # The demo's voice is espeak-ng, the network's home ground: read its emotion as heard (`speech`) unless
  # asked otherwise; `auto`'s fallback is calibrated for voices the network never heard.
  chosen = args.emotion or args.emotion_from or args.emotion_schedule
  written, result = _one(generator, spaces, formats, audio, os.path.join(args.out, "demo"), args, video,
                         _controls(args, None if chosen else {"emotion": "speech"}))
  _report(result, written, time.perf_counter() - started)
  _print_skipped(skipped)
  return 0


def _print_skipped(skipped: dict) -> None:
  """After the work (so a failing input's error is the only line): the formats left out, with why."""
  for fmt, reason in skipped.items():
    print(f"skipped {fmt}: {reason}")


def _report(result, written: dict, seconds: float) -> None:
  frames = result.seq.num_frames
  line = f"{frames} frames ({frames / schema.FPS:.1f} s), emotion {result.emotion}"
  if result.speech_emotion is not None:
    best = int(result.speech_emotion.argmax())
    line += f" (heard: {schema.EMOTIONS[best]} {result.speech_emotion[best]:.0%}"
    if result.emotion_trust is not None and result.emotion_trust < 1:
      unfamiliar = result.emotion_familiar is not None and result.emotion_familiar < 0.5
      why = "unfamiliar voice" if unfamiliar else "not sure enough"
      line += (f"; {why}: neutral" if result.emotion_trust == 0 else
               f"; followed {result.emotion_trust:.0%}, neutral elsewhere")
    line += ")"
  if result.pause_frames:
    line += f", lips at rest in {result.pause_frames} pause frames"
  print(line)
  for fmt, path in written.items():
    print(f"  {fmt:<11} {path}")
  print(f"done in {seconds:.1f} s")
