"""What videmo says about one video: the `Prediction` record, its JSON form and its check.

A prediction covers the T frames the model saw (the frames with a face, in temporal order;
evenly subsampled when the run's config evaluates a fixed number of frames), E classes,
N attention heads and the attention grid gh x gw = (C/16) x (C/16) of C x C face crops.
`PREDICTION_FIELDS` lists the JSON record's fields, in order; docs/predict.md documents
each of them (a test keeps the two in step):

  video                str          the file or frame folder
  person               int          `--faces all`: the person's number in the video (0, 1, ...
                                    in order of first appearance); null: the main face
  status               str          "ok", "no_face" (no frame has a face) or "unreadable"
  message              str          one line: why there is no prediction, or what happened
                                    on the way (a video that breaks off); "" otherwise
  checkpoint, step     str, int     the model: its step folder and training step
  classes              [E] str      the class names, in the model's order
  pooling              str          the temporal pooling (softmax, average, max, lstm):
                                    what frame_importance means
  trained_on           {dataset, synthetic}  the dataset the model was trained on, and
                                    whether its faces are synthetic (SynthEmo): such a
                                    model knows nothing of real faces
  label, probability   str, float   the predicted class and p(label|S) (null unless ok)
  probabilities        [E]          p(c|S), sums to 1 (null unless ok)
  true_label           str          the ground truth where known (`videmo eval --report`; the
                                    VIDEO.json of `videmo render-clip`), else null
  true_window          [2] int      [start, stop) of the source frames that show the emotion,
                                    where known (SynthEmo, as for true_label), else null
  num_source_frames    int          frames decoded from the video
  fps                  float        the video's frame rate (null for frame folders)
  frame_index          [T] int      the source frame of each frame the model saw
  frame_time           [T] float    its time in seconds from the first frame, from the video's
                                    timestamps (variable frame rates too); null when unknown
  face_box             [T, 4] float the face's box (x0, y0, x1, y1) in that source frame's
                                    pixels; null when unknown (--aligned, stored clips)
  frame_probabilities  [T, E]       per-frame class probabilities, softmax_c(o_fc / τ)
  frame_importance     [T]          p(f|S) (or the pooling's analogue), sums to 1
  frames_without_face  [int]        source frames where no face was found (with --faces all:
                                    where this person's face was not found)
  frames               [int]        source frames where the face (this person's) was found,
                                    all of them, whether or not the model saw each; null
                                    when not recorded (--aligned, stored clips)
  attention            [T, N, gh, gw]  each head's attention over the face grid (each map
                                    sums to 1); null for models without attention

`Prediction` holds the same fields as numpy arrays (plus `faces`, the [T, C, C, 3] crops the
model saw, kept only when asked for: the report draws them; they are not in the JSON).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from videmo.data.clip_status import NO_FACE, OK, UNREADABLE  # preparation's status names

STATUSES = (OK, NO_FACE, UNREADABLE)

PREDICTION_FIELDS: tuple[str, ...] = (
    "video", "person", "status", "message", "checkpoint", "step", "classes", "pooling", "trained_on", "label", "probability",
    "probabilities", "true_label", "true_window", "num_source_frames", "fps", "frame_index", "frame_time",
    "face_box", "frame_probabilities", "frame_importance", "frames_without_face", "frames", "attention",
)

DECIMALS = 6  # floats in the JSON record are rounded to this many decimals

# What `videmo predict` and the report say of a model trained on synthetic faces.
SYNTHETIC_NOTICE = ("this model was trained on {dataset}, synthetic drawn faces: it knows nothing of real "
                    "faces, and on them its labels and attention maps mean nothing")


@dataclasses.dataclass
class Prediction:
  """One video's prediction; see the module docstring for the fields and their shapes."""

  video: str
  status: str
  message: str
  checkpoint: str
  step: int
  classes: tuple[str, ...]
  pooling: str
  trained_on: str = ""                           # the training dataset's name ("" when unknown)
  synthetic_training: bool = False               # that dataset's faces are synthetic (SynthEmo)
  num_source_frames: int = 0
  fps: float | None = None
  probabilities: np.ndarray | None = None        # [E]
  true_label: str | None = None
  true_window: tuple[int, int] | None = None
  frame_index: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0,), np.int64))  # [T]
  frame_time: np.ndarray | None = None           # [T] seconds; None: frame_index / fps where fps is known
  frame_probabilities: np.ndarray | None = None  # [T, E]
  frame_importance: np.ndarray | None = None     # [T]
  frames_without_face: list[int] = dataclasses.field(default_factory=list)
  attention: np.ndarray | None = None            # [T, N, gh, gw]
  person: int | None = None                      # --faces all: the person's number; None: the main face
  face_box: np.ndarray | None = None             # [T, 4] pixels of each source frame, or None
  frames: list[int] | None = None                # source frames where this face was found, or None
  faces: np.ndarray | None = dataclasses.field(default=None, repr=False)  # [T, C, C, 3] uint8, not in JSON

  @property
  def ok(self) -> bool:
    return self.status == OK

  @property
  def label(self) -> str | None:
    return self.classes[int(np.argmax(self.probabilities))] if self.ok else None

  @property
  def probability(self) -> float | None:
    return float(np.max(self.probabilities)) if self.ok else None

  def top(self, k: int = 3) -> list[tuple[str, float]]:
    """The k most probable classes, most probable first: [(name, p(c|S))]."""
    if not self.ok:
      return []
    order = np.argsort(-np.asarray(self.probabilities), kind="stable")[:k]
    return [(self.classes[i], float(self.probabilities[i])) for i in order]

  @property
  def name(self) -> str:
    """The video, and the person when every person is predicted: 'clip.mp4 [person 1]'."""
    return self.video if self.person is None else f"{self.video} [person {self.person}]"

  def summary(self) -> str:
    """One line: 'clip.mp4: Happy 62.0% (top-3: Happy 62.0%, Sad 20.1%, Fear 8.3%); 48 frames, 0 without a face'."""
    if self.status == NO_FACE:
      return f"{self.name}: no prediction: {self.message}"
    if not self.ok:
      return f"{self.name}: no prediction: {self.status}: {self.message}"
    top = ", ".join(f"{name} {100 * p:.1f}%" for name, p in self.top(3))
    line = (f"{self.name}: {self.label} {100 * self.probability:.1f}% (top-3: {top}); "
            f"{len(self.frame_index)} frames seen, {len(self.frames_without_face)} without a face")
    return line + (f"; {self.message}" if self.message else "")

  def times(self) -> np.ndarray | None:
    """[T] seconds of the frames the model saw: `frame_time` (from the video's timestamps),
    else frame_index / fps (a constant rate), else None."""
    if self.frame_time is not None and len(self.frame_time) == len(self.frame_index):
      return np.asarray(self.frame_time, np.float64)
    if self.fps:
      return np.asarray(self.frame_index, np.float64) / float(self.fps)
    return None

  def to_json(self) -> dict[str, Any]:
    """The JSON record (plain lists and numbers), fields in PREDICTION_FIELDS order."""
    ok = self.ok
    record = dict(
        video=self.video, person=None if self.person is None else int(self.person), status=self.status, message=self.message, checkpoint=self.checkpoint,
        step=int(self.step), classes=list(self.classes), pooling=self.pooling,
        trained_on=dict(dataset=self.trained_on, synthetic=bool(self.synthetic_training)), label=self.label,
        probability=_round(self.probability) if ok else None,
        probabilities=_round(self.probabilities) if ok else None, true_label=self.true_label,
        true_window=None if self.true_window is None else [int(i) for i in self.true_window],
        num_source_frames=int(self.num_source_frames), fps=None if self.fps is None else float(self.fps),
        frame_index=[int(i) for i in self.frame_index], frame_time=_round(self.times()),
        face_box=_round(self.face_box) if ok and self.face_box is not None else None,
        frame_probabilities=_round(self.frame_probabilities) if ok else [],
        frame_importance=_round(self.frame_importance) if ok else [],
        frames_without_face=[int(i) for i in self.frames_without_face],
        frames=None if self.frames is None else [int(i) for i in self.frames],
        attention=_round(self.attention) if ok and self.attention is not None else None,
    )
    assert tuple(record) == PREDICTION_FIELDS, "Prediction.to_json and PREDICTION_FIELDS disagree"
    return record


def _round(values: Any) -> Any:
  if values is None:
    return None
  return np.round(np.asarray(values, np.float64), DECIMALS).tolist()
