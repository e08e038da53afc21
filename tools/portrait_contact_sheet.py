"""Contact sheet of photo mode on portraits: the fit over each picture, and the animated face on the face.

  python tools/portrait_contact_sheet.py ../shared/portraits/*.png --out docs/photo_mode_sheet.png

Per portrait (a row): the picture, the fitted face drawn over it (`a2e track --overlay`), and two frames of
photo mode (render/photo.py placed by fit/portrait.py) with the mouth open and the eyes closed, cropped to
the face and scaled to one height.
"""

import argparse

import numpy as np
from PIL import Image

HEIGHT = 220


def row(path: str, model) -> list[np.ndarray]:
  from a2e_jax.fit import outputs
  from a2e_jax.fit.portrait import fit_portrait, placement
  from a2e_jax.render.api import render_frames
  from a2e_jax.render.photo import load_photo

  photo = load_photo(path)
  track = fit_portrait(model, path)
  overlay = next(outputs.overlay_frames(model, track, (photo[None] * 255 + 0.5).astype(np.uint8)))[0]
  exp = np.repeat(track.fit.exp[:1], 2, 0)
  exp[0, model.channel_names.index("jawOpen")] = 0.45
  for side in ("L", "R"):
    exp[1, model.channel_names.index(f"eyeBlink_{side}")] = 1.0
  place = placement(model, path, None, 2)
  frames = render_frames(
    model, exp, pose_t6=place["pose"], id_k=place["id"], ref_image=path, ref_exp=place["ref_exp"],
    ref_gamma=place["gamma"], ref_tex=place["tex"], batch=2
  )
  box = track.points[0]
  (x0, y0), (x1, y1) = box.min(0), box.max(0)
  side = 1.6 * max(x1 - x0, y1 - y0)
  cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
  crop = (int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))
  panels = [(photo * 255 + 0.5).astype(np.uint8), overlay, *frames]
  return [np.asarray(Image.fromarray(p).crop(crop).resize((HEIGHT, HEIGHT))) for p in panels]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("portraits", nargs="+")
  parser.add_argument("--out", default="photo_mode_sheet.png")
  args = parser.parse_args(argv)
  from a2e_jax.face.builtin import builtin_model

  model = builtin_model()
  rows = [np.concatenate(row(p, model), 1) for p in args.portraits]
  Image.fromarray(np.concatenate(rows, 0)).save(args.out, optimize=True)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
