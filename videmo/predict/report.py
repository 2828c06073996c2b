"""One figure per video in the style of the paper's Fig. 2: what the model decided, where it
looked and when.

    title  video, prediction and top-3 (and the true class, when known)
    (a)    the K most important frames' face crops, in temporal order, each with p(f|S)
           and that as a % of the largest shown (the paper re-normalises the same way)
    (b)    one row per attention head: its map [gh, gw] upsampled over the C x C face,
           scaled to its own maximum
    (c)    each shown frame's class probabilities, the chosen class in red
    (d)    frame importance over the whole clip, shown frames marked, frames without a
           face ticked below; p(chosen class | frame) dashed on the right axis; the true
           expressive window shaded green where it is known (SynthEmo)
    (e)    the timeline: every class's p(c | frame) over the video's time in seconds (from
           its timestamps; source frames when unknown), the chosen class in red, the
           same numbers as `videmo predict --timeline` writes

Where a model has no attention (spatial='average') or its pooling has no frame importance
(average pooling weighs every frame 1/T), the figure says so in words in that panel. Max
and LSTM pooling's importances are the poolings' analogues of p(f|S) (videmo/models/temporal.py)
and are labelled as such. Drawing uses matplotlib's object API (no pyplot, no global backend).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from videmo.predict import record as record_lib

RED, GREY, GREEN = "#d62728", "#9a9a9a", "#2ca02c"

NO_ATTENTION_NOTE = ("no spatial attention: this model averages the face's conv5_3 descriptors over all "
                     "positions (spatial='average'), so there is no map to show")
IMPORTANCE_LABELS = {
    "softmax": "temporal importance p(f|S)",
    "max": "frame importance (max pooling: p(c|S) of each class whose highest score is in the frame)",
    "lstm": "frame importance (LSTM: the rise in the chosen class's probability that the frame brings)",
}
UNIFORM_POOLINGS = ("average", "mean_score")  # every frame weighs 1/T
NO_IMPORTANCE_NOTE = ("no frame importance: average pooling weighs every frame equally (1/T); "
                      "the line is p(chosen class | frame)")


def shown_frames(prediction: record_lib.Prediction, max_frames: int) -> np.ndarray:
  """Positions (into the T frames seen) of the frames to draw, in temporal order: the
  `max_frames` most important ones, or evenly spaced ones when all weigh the same."""
  from videmo.data.loading import pipeline

  t = len(prediction.frame_index)
  if prediction.pooling in UNIFORM_POOLINGS:
    return pipeline.evenly_spaced(t, max_frames)
  order = np.argsort(-np.asarray(prediction.frame_importance), kind="stable")[:max_frames]
  return np.sort(order)


def upsample(grid: np.ndarray, size: int) -> np.ndarray:
  """An attention map [gh, gw] -> [size, size] (bilinear), scaled to a maximum of 1."""
  from PIL import Image

  image = Image.fromarray(np.asarray(grid, np.float32), mode="F").resize((size, size), Image.BILINEAR)
  heat = np.asarray(image, np.float32)
  return heat / max(float(heat.max()), 1e-12)


def title_lines(prediction: record_lib.Prediction) -> tuple[str, str]:
  """The figure's two title lines: the prediction, then the frames and the model."""
  top = ", ".join(f"{name} {100 * p:.1f}%" for name, p in prediction.top(3))
  first = f"{Path(prediction.video).name}: {prediction.label} {100 * prediction.probability:.1f}%   (top-3: {top})"
  if prediction.true_label is not None:
    first += f"   true: {prediction.true_label}"
  second = (f"{len(prediction.frame_index)} frames seen of {prediction.num_source_frames}, "
            f"{len(prediction.frames_without_face)} without a face; {prediction.pooling} pooling; "
            f"step {prediction.step}")
  return first, second


def figure(prediction: record_lib.Prediction, max_frames: int = 8):
  """The matplotlib Figure of one prediction made with `keep_faces=True` (see the module docstring)."""
  from matplotlib.figure import Figure

  if not prediction.ok:
    raise ValueError(f"report: {prediction.video} has no prediction ({prediction.status}: {prediction.message})")
  if prediction.faces is None:
    raise ValueError(f"report: the prediction of {prediction.video} has no face crops; predict with keep_faces=True")
  shown = shown_frames(prediction, max_frames)
  k = len(shown)
  heads = 0 if prediction.attention is None else prediction.attention.shape[1]
  attention_rows = max(heads, 1)
  ratios = [1.0] + ([1.0] * heads if heads else [0.45]) + [0.9, 1.3, 1.3]
  fig = Figure(figsize=(max(7.0, 1.45 * k + 1.2), 1.5 * sum(ratios) + 0.9), dpi=100)
  grid = fig.add_gridspec(len(ratios), k, height_ratios=ratios, hspace=0.6, wspace=0.12,
                          left=0.07, right=0.93, top=1 - 1.05 / fig.get_figheight(), bottom=0.07)
  chosen = int(np.argmax(prediction.probabilities))
  _draw_faces(fig, grid, prediction, shown)
  if heads:
    _draw_attention(fig, grid, prediction, shown)
  else:
    ax = fig.add_subplot(grid[1, :])
    ax.set_axis_off()
    ax.text(0.5, 0.5, NO_ATTENTION_NOTE, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
  _draw_frame_bars(fig, grid, prediction, shown, chosen, row=1 + attention_rows)
  _draw_importance(fig.add_subplot(grid[-2, :]), prediction, shown, chosen)
  _draw_timeline(fig.add_subplot(grid[-1, :]), prediction, chosen)
  first, second = title_lines(prediction)
  wrong = prediction.true_label is not None and prediction.true_label != prediction.label
  fig.suptitle(first, fontsize=11, color=RED if wrong else "black", y=1 - 0.12 / fig.get_figheight(), va="top")
  fig.text(0.5, 1 - 0.45 / fig.get_figheight(), second, ha="center", va="top", fontsize=8, color="#444444")
  return fig


def _draw_faces(fig, grid, prediction, shown) -> None:
  importance = np.asarray(prediction.frame_importance)
  peak = max(float(importance[shown].max()), 1e-12)
  for column, position in enumerate(shown):
    ax = fig.add_subplot(grid[0, column])
    ax.imshow(prediction.faces[position])
    ax.set_xticks([])
    ax.set_yticks([])
    label = f"frame {int(prediction.frame_index[position])}"
    if prediction.pooling not in UNIFORM_POOLINGS:
      label += f"\n{importance[position]:.3f} ({100 * importance[position] / peak:.0f}%)"
    ax.set_title(label, fontsize=7)
    if column == 0:
      ax.set_ylabel("face", fontsize=8)


def _draw_attention(fig, grid, prediction, shown) -> None:
  size = prediction.faces.shape[1]
  for head in range(prediction.attention.shape[1]):
    for column, position in enumerate(shown):
      ax = fig.add_subplot(grid[1 + head, column])
      grey = prediction.faces[position].astype(np.float32).mean(-1)
      ax.imshow(grey, cmap="gray", vmin=0, vmax=255)
      ax.imshow(upsample(prediction.attention[position, head], size), cmap="inferno", alpha=0.6, vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if column == 0:
        ax.set_ylabel(f"head {head + 1}", fontsize=8)


def _draw_frame_bars(fig, grid, prediction, shown, chosen: int, row: int) -> None:
  classes = prediction.classes
  colours = [RED if c == chosen else GREY for c in range(len(classes))]
  for column, position in enumerate(shown):
    ax = fig.add_subplot(grid[row, column])
    ax.bar(range(len(classes)), prediction.frame_probabilities[position], color=colours)
    ax.set_ylim(0, 1)
    ax.set_xticks(range(len(classes)), [name[:3] for name in classes], rotation=90, fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    if column:
      ax.set_yticklabels([])
    else:
      ax.set_ylabel("p(c | frame)", fontsize=7)


def _draw_importance(ax, prediction, shown, chosen: int) -> None:
  index = np.asarray(prediction.frame_index)
  per_frame = np.asarray(prediction.frame_probabilities)[:, chosen]
  if prediction.pooling in IMPORTANCE_LABELS:
    importance = np.asarray(prediction.frame_importance)
    ax.plot(index, importance, color="black", lw=1.2, marker="." if len(index) < 60 else None)
    ax.scatter(index[shown], importance[shown], color=RED, zorder=3, s=18, label="frames shown")
    ax.set_ylim(0, max(float(importance.max()) * 1.15, 1e-6))
    ax.set_ylabel("importance", fontsize=8)
    ax.set_title(IMPORTANCE_LABELS[prediction.pooling], fontsize=9)
    twin = ax.twinx()
  else:
    ax.set_title("frame importance", fontsize=9)
    ax.text(0.5, 0.9, NO_IMPORTANCE_NOTE, ha="center", va="top", fontsize=8, transform=ax.transAxes)
    ax.set_yticks([])
    twin = ax.twinx()
    for position in shown:
      ax.axvline(index[position], color=RED, lw=0.6, alpha=0.5)
  twin.plot(index, per_frame, color=RED, lw=0.8, alpha=0.7, ls="--")
  twin.set_ylim(0, 1.05)
  twin.set_ylabel(f"p({prediction.label} | frame)", fontsize=7, color=RED)
  twin.tick_params(axis="y", labelsize=6, colors=RED)
  window = prediction.true_window
  if window is not None and window[1] > window[0]:
    ax.axvspan(window[0] - 0.5, window[1] - 0.5, color=GREEN, alpha=0.12, lw=0,
               label=f"true expressive window ({window[0]}-{window[1] - 1})")
  missing = np.asarray(prediction.frames_without_face)
  if len(missing):
    ax.plot(missing, np.zeros(len(missing)), "|", color=GREY, ms=8, label="no face")
  if len(missing) or window is not None or prediction.pooling in IMPORTANCE_LABELS:
    ax.legend(loc="upper left", fontsize=6, frameon=False)
  last = max(int(index.max()), int(missing.max()) if len(missing) else 0, prediction.num_source_frames - 1)
  ax.set_xlim(-0.5, last + 0.5)
  ax.set_xlabel("source frame" + (f" ({prediction.fps:g} fps)" if prediction.fps else ""), fontsize=8)
  ax.tick_params(labelsize=7)


def _draw_timeline(ax, prediction, chosen: int) -> None:
  times = prediction.times()
  x = np.asarray(prediction.frame_index, np.float64) if times is None else times
  probabilities = np.asarray(prediction.frame_probabilities)
  for c, name in enumerate(prediction.classes):
    ax.plot(x, probabilities[:, c], lw=1.6 if c == chosen else 0.8, color=RED if c == chosen else None,
            alpha=1.0 if c == chosen else 0.7, label=name, marker="." if len(x) < 30 else None, ms=3)
  ax.set_ylim(0, 1.02)
  ax.set_ylabel("p(c | frame)", fontsize=8)
  ax.set_xlabel("seconds" if times is not None else "source frame", fontsize=8)
  ax.set_title("timeline: each class's probability per frame", fontsize=9)
  ax.legend(loc="upper left", fontsize=6, frameon=False, ncol=min(len(prediction.classes), 7))
  ax.tick_params(labelsize=7)


def write_figure(prediction: record_lib.Prediction, path: str | os.PathLike, max_frames: int = 8) -> Path:
  """Save `figure(prediction)` as a PNG at `path` (folders made as needed); returns the path."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  figure(prediction, max_frames).savefig(path, format="png")
  return path
