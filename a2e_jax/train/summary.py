"""What a run writes for people to read: `metrics.jsonl`, TensorBoard event files, coefficient plots.

Only process 0 writes. `WORKDIR/metrics.jsonl` gets one JSON line per train step and per evaluation
(`{"step": s, "split": "train" | "eval", name: value, ...}`); a resumed run appends, so when a step appears
twice the later line is the resumed run's. TensorBoard files (tensorboardX, no TensorFlow) go to
`WORKDIR/tensorboard/`: train metrics averaged over each logging window, the learning rate, throughput,
eval metrics, images of predicted against true coefficient curves and, where the task can render faces, a
filmstrip of predicted over true faces (an image: tensorboardX's videos would need moviepy). WORKDIR may
be a URL (gs://bucket/run): both go through etils.epath.
"""

import io
import json
import math
import os

import jax
import numpy as np
from etils import epath

# Channels the curve plots show when the model has them (ICT/ARKit names): mouth, smile, brows, blinks.
PLOT_CHANNELS = ("jawOpen", "mouthFunnel", "mouthSmile_L", "browInnerUp_L", "eyeBlink_L", "mouthFrown_L")


class _Lines:
  """metrics.jsonl on a URL (gs://...): objects there cannot be appended to, so the file is rewritten
  whole at each flush (it holds one short line per step)."""

  def __init__(self, path: epath.Path):
    self.path = path
    self.text = path.read_text() if path.exists() else ""

  def write(self, line: str) -> None:
    self.text += line

  def flush(self) -> None:
    self.path.write_text(self.text)

  def close(self) -> None:
    self.flush()


class _UrlEvents:
  """A tensorboardX record writer for a URL, through etils.epath (the fsspec package of the scheme, e.g.
  gcsfs): the event file is rewritten whole at each flush, as tensorboardX's own gs:// writer does."""

  def __init__(self, path: str):
    self.path, self.buffer = epath.Path(path), io.BytesIO()

  def write(self, data: bytes) -> None:
    self.buffer.write(data)

  def flush(self) -> None:
    self.path.write_bytes(self.buffer.getvalue())

  def close(self) -> None:
    self.flush()


class _UrlEventsFactory:
  def open(self, path):
    return _UrlEvents(path)

  def directory_check(self, path):
    epath.Path(path).mkdir(parents=True, exist_ok=True)


class Summary:
  """Writes metrics on process 0; on other processes every method does nothing. `workdir` may be a URL
  (etils.epath: gs://, s3://, ... where its filesystem package is installed)."""

  def __init__(self, workdir, tensorboard: bool = True):
    self.enabled = jax.process_index() == 0
    self._jsonl = None
    self._writer = None
    if not self.enabled:
      return
    text = os.fspath(workdir)
    workdir = epath.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if "://" in text:
      self._jsonl = _Lines(workdir / "metrics.jsonl")
    else:
      self._jsonl = open(workdir / "metrics.jsonl", "a")  # noqa: SIM115 - closed in close().
    if tensorboard:
      # Deferred: only runs that write TensorBoard load it.
      from tensorboardX import SummaryWriter, record_writer

      if "://" in text:
        record_writer.register_writer_factory(text.split("://")[0], _UrlEventsFactory())
      self._writer = SummaryWriter(os.fspath(workdir / "tensorboard"), flush_secs=30)

  def record(self, step: int, split: str, metrics: dict) -> None:
    """One line of metrics.jsonl (host floats)."""
    if self._jsonl is not None:
      self._jsonl.write(json.dumps({"step": step, "split": split, **_floats(metrics)}) + "\n")
      if not isinstance(self._jsonl, _Lines):  # a URL's file is written at flush and close
        self._jsonl.flush()

  def scalars(self, step: int, metrics: dict, prefix: str = "") -> None:
    if self._writer is not None:
      for name, value in _floats(metrics).items():
        self._writer.add_scalar(prefix + name, value, step)

  def image(self, step: int, name: str, image_hwc: np.ndarray) -> None:
    if self._writer is not None:
      self._writer.add_image(name, image_hwc, step, dataformats="HWC")

  def flush(self) -> None:
    if self._jsonl is not None:
      self._jsonl.flush()
    if self._writer is not None:
      self._writer.flush()

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._jsonl = None
    if self._writer is not None:
      self._writer.close()
      self._writer = None


def _floats(metrics: dict) -> dict:
  return {k: float(v) for k, v in metrics.items()}


def read_metrics(workdir, split: str = "train") -> dict[int, dict]:
  """{step: metrics} from metrics.jsonl; where a resumed run repeated a step, its later line wins."""
  out = {}
  path = epath.Path(workdir) / "metrics.jsonl"
  if path.exists():
    for line in path.read_text().splitlines():
      if line.strip():
        record = json.loads(line)
        if record.pop("split") == split:
          out[record.pop("step")] = record
  return out


def filmstrip(top_thwc: np.ndarray, bottom_thwc: np.ndarray) -> np.ndarray:
  """[2H, T*W, 3] uint8: two rows of frames (e.g. predicted over true faces)."""
  return np.concatenate([np.concatenate(list(row), axis=1) for row in (top_thwc, bottom_thwc)], axis=0)


def plot_coefficients(pred_tk: np.ndarray, true_tk: np.ndarray, channel_names, mask_t=None,
                      title: str = "") -> np.ndarray:
  """[H,W,3] uint8 image: predicted (solid) against true (dashed) curves of a few named channels."""
  # Deferred: matplotlib takes about half a second to import and only the plots need it.
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # after use("Agg"): no display backend

  frames = len(pred_tk) if mask_t is None else max(int(np.sum(mask_t > 0)), 1)
  names = list(channel_names)
  picked = [names.index(c) for c in PLOT_CHANNELS if c in names] or list(range(min(6, pred_tk.shape[-1])))
  cols = 3
  rows = math.ceil(len(picked) / cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.2 * rows), dpi=80, squeeze=False)
  time_s = np.arange(frames) / 25.0
  for ax, k in zip(axes.flat, picked):
    ax.plot(time_s, true_tk[:frames, k], "k--", lw=1, label="true")
    ax.plot(time_s, pred_tk[:frames, k], "C0", lw=1.3, label="predicted")
    ax.set_title(names[k] if k < len(names) else f"channel {k}", fontsize=9)
    ax.tick_params(labelsize=7)
  for ax in list(axes.flat)[len(picked):]:
    ax.axis("off")
  axes.flat[0].legend(fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return image
