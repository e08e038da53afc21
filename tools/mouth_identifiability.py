"""Which mouth channels the landmarks can tell apart at all: the geometry and the landmarker's own points.

  python tools/mouth_identifiability.py [--frames 200] [--seed 1] [--json mouth_identifiability.json]

For the built-in face through its found 468-point correspondence (fit/find_points.py), on the synthetic
clip tools/bench_track.py scores (same seed and length), per mouth channel (fit/synthetic.MOUTH_CHANNELS):

- geometry: the 2D displacement of the 40 lip points per unit of the channel (frontal view, % IOD), and
  the part of it no other mouth channel can make (`unique`: 1 / sqrt((JᵀJ)⁻¹_kk) over |J_k|, 1 = nothing
  else moves the points that way, 0 = another channel's combination does the same); the largest cosine
  with another channel's displacement names the channel it trades with;
- what a fit could read from the points at best: with the true head pose, identity and other channels
  given, each frame's mouth channels solved from the lip points' displacement from the face with no mouth
  motion (least squares within [0, 1]), r against the truth — from the model's own points at the true
  coefficients (what the geometry allows: 1 if nothing trades) and from the landmarker's points (what its
  lips carry), with all seven channels free and with only that channel free (`alone`: what is left when
  nothing can trade with it). A channel whose landmarker r is low here cannot come out of the landmarks by
  any fit; one much better alone than with the others free is lost to a trade.
"""

import argparse
import json

import numpy as np


def lip_displacements(model, corr, truth, observed_tl2):
  """([T,40,2] model, [T,40,2] landmarker, [T,40,2,C] per unit of each mouth channel) lip points minus the
  model's with the mouth channels at 0, in the head's frame (rotated back by the true roll), / IOD."""
  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit import find_points
  from a2e_jax.fit.solve import inter_ocular
  from a2e_jax.fit.synthetic import MOUTH_CHANNELS
  from a2e_jax.render import camera as cam_lib

  lips = find_points.lip_points()
  names = model.channel_names
  tied = [[k for k, c in enumerate(names) if c in (m, m + "_L", m + "_R")] for m in MOUTH_CHANNELS]
  still = truth.exp.copy()
  still[:, sum(tied, [])] = 0.0
  pts = corr_lib.point_model(model, corr)
  camera = cam_lib.deep3d_camera(truth.frames.shape[1])
  rot = truth.pose[:, :3]
  iod = np.asarray(inter_ocular(truth.landmarks))[:, None, None]
  roll = truth.pose[:, 2]
  unroll = np.stack(
    [np.stack([np.cos(roll), -np.sin(roll)], -1), np.stack([np.sin(roll), np.cos(roll)], -1)], -2
  )

  def project(exp):
    posed = cam_lib.transform(np.asarray(pts.points(truth.id, exp, rot)), rot, truth.pose[:, 3:])
    return np.asarray(cam_lib.to_pixels(camera, cam_lib.project(camera, posed)))[:, lips]

  base = project(still)
  back = lambda px: np.einsum("tij,tpj->tpi", unroll, (px - base) / iod)  # noqa: E731
  step = 0.1
  per_unit = []
  for channel in tied:
    moved = still.copy()
    moved[:, channel] += step
    per_unit.append(back(project(moved)) / step)
  return back(project(truth.exp)), back(observed_tl2[:, lips]), np.stack(per_unit, -1)


def read_out(displacement_tp2, per_unit_tp2c, truth_tc, free) -> np.ndarray:
  """[T,C] each frame's mouth channels from the lip points' displacement (least squares in the channels
  `free` [C] bool, within [0, 1]; the others held at the truth)."""
  from scipy.optimize import lsq_linear

  out = truth_tc.copy()
  for t in range(len(truth_tc)):
    jac = per_unit_tp2c[t].reshape(-1, truth_tc.shape[1])
    rhs = displacement_tp2[t].ravel() - jac[:, ~free] @ truth_tc[t, ~free]
    out[t, free] = lsq_linear(jac[:, free], rhs, bounds=(0, 1)).x
  return out


def geometry(model, corr, channels) -> dict:
  """Per channel: frontal 2D displacement of the lip points per unit (% IOD), its unique part, the channel
  it is most alike and that cosine."""
  from a2e_jax.fit import correspondence as corr_lib
  from a2e_jax.fit import find_points
  from a2e_jax.fit.solve import inter_ocular

  pts = corr_lib.point_model(model, corr)
  iod = float(inter_ocular(np.asarray(model.mean)[np.asarray(model.landmarks)]))
  jac = np.asarray(pts.exp_basis)[find_points.lip_points()][:, :2][..., channels]  # [40,2,C] frontal
  jac = jac.reshape(-1, len(channels)) / iod
  gram = jac.T @ jac
  norm = np.sqrt(np.diag(gram))
  cosine = gram / np.outer(norm, norm)
  np.fill_diagonal(cosine, -np.inf)
  unique = 1.0 / np.sqrt(np.diag(np.linalg.inv(gram))) / norm
  rms = norm / np.sqrt(jac.shape[0] / 2)
  return {"rms_pct": 100 * rms, "unique": unique, "alike": cosine.argmax(1), "cosine": cosine.max(1)}


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--frames", type=int, default=200)
  parser.add_argument("--seed", type=int, default=1)
  parser.add_argument("--json", default="mouth_identifiability.json")
  args = parser.parse_args(argv)

  from a2e_jax import vision
  from a2e_jax.face.builtin import builtin_model
  from a2e_jax.fit import quality, synthetic
  from a2e_jax.fit.find_points import mesh_correspondence

  model = builtin_model()
  corr = mesh_correspondence(model)
  channels = synthetic.mouth_channels(model.channel_names)
  truth = synthetic.clip(model, args.frames, seed=args.seed)
  faces = vision.Landmarker(eyes=False, batch=16).video(truth.frames)
  seen = np.asarray(faces.found, bool)
  observed = np.asarray(faces.points[..., :2], np.float64) + 0.5
  exact, measured, per_unit = lip_displacements(model, corr, truth, observed)
  targets = truth.exp[:, channels].astype(np.float64)
  r = {}
  for source, displacement in (("model", exact), ("landmarker", measured)):
    every = read_out(displacement[seen], per_unit[seen], targets[seen], np.ones(len(channels), bool))
    r[source] = [quality.correlation(every[:, k], targets[seen, k]) for k in range(len(channels))]
    alone = [
      read_out(displacement[seen], per_unit[seen], targets[seen], np.arange(len(channels)) == k)
      for k in range(len(channels))
    ]
    r[source + "_alone"] = [
      quality.correlation(alone[k][:, k], targets[seen, k]) for k in range(len(channels))
    ]
  geo = geometry(model, corr, channels)
  rows = {}
  header = ("channel", "2D/unit", "unique", "most alike", "r model", "r landmarker", "alone")
  print("{:15s} {:>8s} {:>7s}  {:24s} {:>8s} {:>13s} {:>6s}".format(*header))
  for k, name in enumerate(synthetic.MOUTH_CHANNELS):
    alike = synthetic.MOUTH_CHANNELS[geo["alike"][k]]
    rows[name] = {
      "displacement_pct_iod_per_unit": float(geo["rms_pct"][k]),
      "unique": float(geo["unique"][k]),
      "most_alike": alike,
      "cosine": float(geo["cosine"][k]),
      **{f"r_{source}": float(values[k]) for source, values in r.items()},
    }
    print(
      f"{name:15s} {geo['rms_pct'][k]:7.1f}% {geo['unique'][k]:7.2f}  {alike:15s} "
      f"cos {geo['cosine'][k]:4.2f} {r['model'][k]:8.2f} {r['landmarker'][k]:13.2f} "
      f"{r['landmarker_alone'][k]:6.2f}",
      flush=True,
    )
  residual = (measured - exact)[seen]
  out = {"frames": args.frames, "seed": args.seed, "found": int(seen.sum()), "channels": rows}
  out["lip_residual_rms_pct_iod"] = float(100 * np.sqrt((residual**2).sum(-1).mean()))
  print(
    f"landmarker's lip points vs the model's at the truth: RMS {out['lip_residual_rms_pct_iod']:.1f} % IOD"
  )
  with open(args.json, "w") as f:
    json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
