"""A stored SynthEmo clip's ground truth, recomputed from its parameters without drawing a pixel.

`clip_truth(job)` replays the clip's random draws up to its first pixel (render.plan_job) and
derives from them what the renderer knows: the expressive window, the intensity per frame, the
regions the clip's class moves and, on the frames asked for, their masks. The stored records
keep their fields (an evaluation reads the rest from here), so datasets built before these
masks existed are read as they are; `check_record` says when a record was not rendered by this
renderer.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from videmo.data.synthemo import render


def clip_truth(job: render.ClipJob, frames: Sequence[int] | None = None) -> dict[str, Any]:
  """The ground truth of the clip `job` describes (as render.render_job renders it).

  frames: the frame numbers whose masks to compute (default: every frame).
  Returns a dict:
    num_frames          F
    intensity           [F] float32
    window              (start, stop), (0, 0) for Neutral
    apex                int (-1 for Neutral)
    expression_regions  the regions the clip's class moves (regions.REGIONS names)
    distractor          [F] int8 (0: none, else 1 + the index in distractors.KINDS)
    frames              [K] int64, the frame numbers of the masks
    expression_mask     [K, S, S] bool: the expression's regions, minus what occluders fully hide
    region_mask         [K, S, S] bool: every region (the builder's stored region_mask)
  """
  num_frames, plan = render.plan_job(job)
  chosen = np.arange(num_frames) if frames is None else np.asarray(frames, np.int64).reshape(-1)
  if chosen.size and (chosen.min() < 0 or chosen.max() >= num_frames):
    raise ValueError(f"frames must be in 0..{num_frames - 1} for clip {render.clip_key(job)}, got "
                     f"{chosen.min()}..{chosen.max()}")
  size = job.size
  expression = np.zeros((len(chosen), size, size), bool)
  every = np.zeros((len(chosen), size, size), bool)
  for k, frame in enumerate(chosen):
    canvas = plan.canvas(int(frame))
    every[k] = plan.region_mask(int(frame), canvas=canvas)
    if plan.regions:
      expression[k] = plan.region_mask(int(frame), plan.regions, canvas=canvas)
  return dict(num_frames=num_frames, intensity=plan.intensity, window=plan.window, apex=plan.apex,
              expression_regions=plan.regions, distractor=plan.distractors.kind, frames=chosen,
              expression_mask=expression, region_mask=every)


def check_record(job: render.ClipJob, record: dict[str, Any], truth: dict[str, Any] | None = None) -> None:
  """A one-line ValueError unless the stored `record` (label, num_frames, window, source) is the
  clip `job` renders: a dataset built by another renderer has other ground truth."""
  truth = truth or clip_truth(job, frames=[])
  stored = dict(label=int(record["label"]), num_frames=int(record["num_frames"]),
                window=tuple(int(v) for v in np.asarray(record["window"]).reshape(-1)),
                source=_text(record["source"]))
  expected = dict(label=job.label, num_frames=truth["num_frames"], window=tuple(truth["window"]),
                  source=render.clip_source(job.seed, job.split, job.index))
  wrong = [f"{name} {stored[name]!r} (renderer: {expected[name]!r})"
           for name in stored if stored[name] != expected[name]]
  if wrong:
    raise ValueError(f"SynthEmo clip {render.clip_key(job)} was not rendered by this renderer: stored "
                     f"{', '.join(wrong)}; rebuild the dataset")


def parse_source(source: str | bytes) -> tuple[int, str, int]:
  """(seed, split, index) of a stored `source` ('synthemo:seed=0:split=train:index=12')."""
  text = _text(source)
  try:
    kind, seed, split, index = text.split(":")
    fields = dict(part.split("=", 1) for part in (seed, split, index))
    if kind != "synthemo":
      raise ValueError
    return int(fields["seed"]), fields["split"], int(fields["index"])
  except (ValueError, KeyError):
    raise ValueError(f"not a SynthEmo clip source (synthemo:seed=S:split=NAME:index=I): {text!r}") from None


def _text(value: str | bytes) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)
