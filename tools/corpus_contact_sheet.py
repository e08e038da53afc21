"""Contact sheet of the built-in corpus's ground-truth faces: 8 emotions x 5 moments of one sentence.

  python tools/corpus_contact_sheet.py [--speaker 3] [--intensity 3] [--size 160] [--out FILE.png]

Rows: the emotions at the given intensity. Columns: the first frame (the expression's onset, before
speech), the middle of the first open vowel, of the third bilabial (lips closed), of the first /u:/
(rounded), and a frame late in the clip. Rendered with the built-in face and the JAX renderer.
"""

import argparse

import numpy as np

TEXT = "Bob made a map of the moon with a blue pen."


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--speaker", type=int, default=3)
  parser.add_argument("--intensity", type=int, default=3, choices=(1, 2, 3))
  parser.add_argument("--size", type=int, default=160)
  parser.add_argument("--out", default="docs/corpus_faces.png")
  args = parser.parse_args(argv)

  import mediapy

  from a2e_jax.core import schema
  from a2e_jax.data.synth import phonemes
  from a2e_jax.data.synth.utterance import synthesize_utterance
  from a2e_jax.face.builtin import builtin_model
  from a2e_jax.render import shading, video
  from a2e_jax.render.pipeline import FaceRenderer

  renderer = FaceRenderer(builtin_model(), size=args.size, batch=5)
  panels, labels = [], []
  for name in schema.EMOTIONS:
    intensity = 1 if name == "neutral" else args.intensity
    wav, phones, seq = synthesize_utterance(TEXT, args.speaker, name, intensity, seed=0)
    ends = np.append(phones.start_s[1:], wav.shape[0] / schema.SAMPLE_RATE)

    def middle_frame(classes, nth, phones=phones, ends=ends):
      hits = [i for i, n in enumerate(phones.names) if phonemes.viseme_classes(n)[0] in classes]
      return int((phones.start_s[hits[nth]] + ends[hits[nth]]) / 2 * schema.FPS)

    picks = [0, middle_frame(("aa", "ae"), 0), middle_frame(("PP",), 2), middle_frame(("ou",), 0),
             seq.num_frames - 8]
    images, _ = renderer.render(seq.coeffs[picks], seq.pose[picks])
    panels += [frame[None] for frame in shading.to_uint8(np.asarray(images))]
    labels += [f"{name} {intensity}", "open vowel", "bilabial", "/u:/", "late"]
  sheet = video.tile(panels, labels, cols=5)[0]
  mediapy.write_image(args.out, sheet)
  print(f"wrote {args.out} ({sheet.shape[1]}x{sheet.shape[0]})")


if __name__ == "__main__":
  main()
