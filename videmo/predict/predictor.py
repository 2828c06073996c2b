"""`Predictor`: a trained model applied to whole videos, with what it looked at and when.

    from videmo.predict import Predictor
    predictor = Predictor("runs/synthemo")             # or runs/synthemo/checkpoints/700
    prediction = predictor.predict("clip.mp4")         # a file, a frame folder, or frames [T, H, W, 3] uint8
    prediction.label, prediction.probability, prediction.top(3)
    prediction.to_json()                               # the fields: videmo/predict/record.py
    predictor.predict_faces_many([faces_a, faces_b], ["a", "b"])   # several videos, frames packed together

The model is rebuilt from the work directory's config and restored from its checkpoint
(`TrainedRun`, videmo/train/trained_run.py); faces are found and cropped as preparation and evaluation do
(videmo/predict/faces_input.py) and normalised with the run's input convention. A folder
of videos goes through `videmo/predict/stream.py` (faces of the next videos in a background
thread while the model works).

Shapes (T frames seen, C x C crops, E classes, N heads, L = (C/16)^2 = gh * gw, K the frame
feature size). Two compiled programs serve every video, whatever its length:

* per frame: chunks of `batch_frames` frames [1, B, C, C, 3] -> frame scores o [1, B, E]
  (the LSTM baseline: frame features V [1, B, K]) and attention [1, B, N, L]. A frame's
  outputs do not depend on the other frames, so a chunk may hold the frames of several
  videos (`run_many`); the last chunk is padded and masked.
* per video: the temporal pooling (or the LSTM) over all T frames, padded with a mask to
  a length bucket Tb = `pipeline.bucket_length(T, buckets)` ([1, Tb, E] or [1, Tb, K]; one
  program per bucket, as evaluation pads its clips), with the per-frame probabilities.

Masks select, so this gives what a single call of the whole model on the unpadded clip gives
(tests check it, for softmax pooling and the LSTM) without holding T frames' activations at
once.
"""

from __future__ import annotations

import math
import os
from collections import deque
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from videmo.data.loading import pipeline
from videmo.data.preparation import clip_processing, faces
from videmo.models import temporal as temporal_lib
from videmo.models import video
from videmo.models.input_convention import InputConvention
from videmo.models.vgg import VGG16_STRIDE
from videmo.predict import faces_input, record
from videmo.train.trained_run import TrainedRun

# Length buckets of the per-video step (evaluation's default; beyond 256: multiples of 256).
DEFAULT_BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256)
_IN_FLIGHT = 2  # frame chunks dispatched ahead of the one whose outputs are read back


class Predictor:
  """A trained model, ready to predict videos (see the module docstring).

  Args:
    checkpoint: a work directory (latest step), its `checkpoints` folder, or a step folder.
    num_frames: frames the model sees per video: None = as the run evaluates
      (config.input.eval_num_frames; 0 there = every frame with a face), 0 = every frame
      with a face, n = n evenly spaced ones.
    batch_frames: frames per forward pass (memory vs. speed; the result does not change).
    buckets: clip lengths the per-video step is compiled for (longer clips: multiples of
      the largest); the result does not change.
    max_frames / max_seconds: read at most this many frames / seconds of each video (None:
      all); passed to `faces_input.faces_from_path`, applied to frames given as arrays too.
  """

  def __init__(self, checkpoint: str | os.PathLike, *, num_frames: int | None = None, batch_frames: int = 32,
               buckets: Sequence[int] = DEFAULT_BUCKETS, max_frames: int | None = None,
               max_seconds: float | None = None):
    run = TrainedRun.open(checkpoint)
    model = run.model()
    params, step = run.restore(model)
    if num_frames is None:
      num_frames = int(run.config.input.eval_num_frames)
    step_dir = run.step_dir(step)
    self.trained_on, self.synthetic_training = run.dataset.name, run.dataset.synthetic
    self._setup(model, params, run.convention, run.class_names, run.dataset.clip_options, run.crop_size,
                num_frames=num_frames, batch_frames=batch_frames, buckets=buckets, max_frames=max_frames,
                max_seconds=max_seconds, checkpoint=os.fspath(step_dir), step=step)

  @classmethod
  def from_parts(cls, model: video.VideoEmotionNet, params: Any, convention: InputConvention,
                 class_names: Sequence[str], clip_options: clip_processing.ClipOptions, crop_size: int, *,
                 num_frames: int = 0, batch_frames: int = 32, buckets: Sequence[int] = DEFAULT_BUCKETS,
                 max_frames: int | None = None, max_seconds: float | None = None, checkpoint: str = "",
                 step: int = 0, trained_on: str = "", synthetic_training: bool = False) -> "Predictor":
    """A predictor for a model already in memory (e.g. right after training, or in evaluation);
    `trained_on`, `synthetic_training`: its training dataset, as the records report it."""
    predictor = cls.__new__(cls)
    predictor.trained_on, predictor.synthetic_training = trained_on, synthetic_training
    predictor._setup(model, params, convention, class_names, clip_options, crop_size, num_frames=num_frames,
                     batch_frames=batch_frames, buckets=buckets, max_frames=max_frames, max_seconds=max_seconds,
                     checkpoint=checkpoint, step=step)
    return predictor

  def _setup(self, model, params, convention, class_names, clip_options, crop_size, *, num_frames: int,
             batch_frames: int, buckets: Sequence[int], max_frames: int | None, max_seconds: float | None,
             checkpoint: str, step: int) -> None:
    if batch_frames < 1:
      raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    if num_frames < 0:
      raise ValueError(f"num_frames must be >= 0 (0 = every frame with a face), got {num_frames}")
    if crop_size > clip_options.face.face_size:
      raise ValueError(f"input.crop_size {crop_size} is larger than the faces ({clip_options.face.face_size}x"
                       f"{clip_options.face.face_size})")
    if not buckets or any(int(b) < 1 for b in buckets):
      raise ValueError(f"buckets must be clip lengths >= 1, got {tuple(buckets)}")
    if max_frames is not None and max_frames < 1:
      raise ValueError(f"max_frames must be >= 1 (or None: every frame), got {max_frames}")
    if max_seconds is not None and not max_seconds > 0:
      raise ValueError(f"max_seconds must be > 0 (or None: the whole video), got {max_seconds}")
    self.model, self.params, self.convention = model, params, convention
    self.class_names = tuple(class_names)
    self.clip_options = clip_options
    self.crop_size = int(crop_size)
    self.num_frames = int(num_frames)
    self.batch_frames = int(batch_frames)
    self.buckets = tuple(sorted(int(b) for b in buckets))
    self.max_frames = None if max_frames is None else int(max_frames)
    self.max_seconds = None if max_seconds is None else float(max_seconds)
    self.checkpoint, self.step = checkpoint, int(step)
    self.forward_passes = 0  # frame chunks run so far (several videos may share one)
    self._face_models: faces.FaceModels | None = None
    self._frame_fn = jax.jit(self._frame_outputs)
    self._clip_fn = jax.jit(self._clip_outputs)

  @property
  def face_models(self) -> faces.FaceModels:
    """dlib's detector and landmark model, loaded on first use."""
    if self._face_models is None:
      self._face_models = faces.load_face_models()
    return self._face_models

  @property
  def grid(self) -> tuple[int, int]:
    """(gh, gw): the attention grid over a crop."""
    return self.crop_size // VGG16_STRIDE, self.crop_size // VGG16_STRIDE

  @property
  def lstm(self) -> bool:
    """Whether the model pools with an LSTM (its per-frame part then ends at the frame features)."""
    return self.model.temporal == "lstm"

  # Faces ---------------------------------------------------------------------------------

  def faces(self, video_or_frames: str | os.PathLike | np.ndarray | Iterable[np.ndarray], *,
            aligned: bool = False, fps: float | None = None) -> faces_input.FaceFrames:
    """The crops the model sees of a video file, frame folder or frames [T, H, W, 3] uint8
    (the first `max_frames` / `max_seconds` of it, when set)."""
    models = None if aligned else self.face_models
    num_frames = self.num_frames or None
    if isinstance(video_or_frames, (str, os.PathLike)):
      return faces_input.faces_from_path(video_or_frames, self.clip_options, models, self.crop_size, num_frames,
                                         aligned, max_frames=self.max_frames, max_seconds=self.max_seconds)
    return faces_input.faces_from_frames(self._capped(video_or_frames, fps), self.clip_options, models,
                                         self.crop_size, num_frames, aligned, fps)

  def people(self, path: str | os.PathLike) -> list[faces_input.FaceFrames]:
    """The crops of every person of a video file or frame folder, one FaceFrames each (`person`
    0, 1, ... in order of first appearance), as `faces` makes the main face's; a video that
    cannot be read or shows nobody gives one FaceFrames saying so."""
    return faces_input.people_from_path(path, self.clip_options, self.face_models, self.crop_size,
                                        self.num_frames or None, max_frames=self.max_frames,
                                        max_seconds=self.max_seconds)

  def _capped(self, frames: Iterable[np.ndarray], fps: float | None) -> list[np.ndarray] | np.ndarray:
    """Frames given in memory, cut to `max_frames` and `max_seconds` (which needs their fps)."""
    limit = self.max_frames
    if self.max_seconds is not None:
      if not fps:
        raise ValueError("max_seconds needs the frame rate of frames given as arrays (fps=...)")
      by_time = max(1, math.ceil(self.max_seconds * fps - 1e-9))  # frames starting before max_seconds
      limit = by_time if limit is None else min(limit, by_time)
    if limit is None:
      return frames if isinstance(frames, np.ndarray) else list(frames)
    return frames[:limit] if isinstance(frames, np.ndarray) else list(frames)[:limit]

  # Prediction ------------------------------------------------------------------------------

  def predict(self, video_or_frames: str | os.PathLike | np.ndarray | Iterable[np.ndarray], *,
              aligned: bool = False, keep_faces: bool = False, name: str | None = None,
              fps: float | None = None, true_label: str | None = None,
              true_window: tuple[int, int] | None = None) -> record.Prediction:
    """Predict one video: a file, a frame folder, or its frames [T, H, W, 3] uint8.

    aligned: the frames already are aligned faces (skip detection; see faces_input).
    keep_faces: keep the [T, C, C, 3] crops in `Prediction.faces` (the report draws them).
    true_label / true_window: the ground truth where known, copied into the Prediction (for a
    `videmo render-clip` video: `render_clip.ground_truth_beside(path)`).
    A video that cannot be read or has no face gives a Prediction with that status.
    """
    if name is None:
      name = os.fspath(video_or_frames) if isinstance(video_or_frames, (str, os.PathLike)) else "<frames>"
    return self.predict_faces(self.faces(video_or_frames, aligned=aligned, fps=fps), name, keep_faces=keep_faces,
                              true_label=true_label, true_window=true_window)

  def predict_faces(self, frames: faces_input.FaceFrames, name: str, *, keep_faces: bool = False,
                    true_label: str | None = None, true_window: tuple[int, int] | None = None) -> record.Prediction:
    """The Prediction for crops already made (`faces`, or a dataset clip in `videmo eval --report`);
    `true_label` / `true_window` are the ground truth where known (see record.py)."""
    return self.predict_faces_many([frames], [name], keep_faces=keep_faces, truths=[(true_label, true_window)])[0]

  def predict_faces_many(self, frames: Sequence[faces_input.FaceFrames], names: Sequence[str], *,
                         keep_faces: bool = False,
                         truths: Sequence[tuple[str | None, tuple[int, int] | None]] | None = None
                         ) -> list[record.Prediction]:
    """Predictions for several videos' crops at once: their frames share forward passes
    (`run_many`); each result is the one `predict_faces` gives alone. `truths`: per video
    (true_label, true_window), each possibly None."""
    if len(names) != len(frames) or (truths is not None and len(truths) != len(frames)):
      raise ValueError(f"predict_faces_many: {len(frames)} videos but {len(names)} names"
                       + ("" if truths is None else f" and {len(truths)} truths"))
    truths = truths if truths is not None else [(None, None)] * len(frames)
    ok = [i for i, f in enumerate(frames) if f.status == record.OK]
    outs = dict(zip(ok, self.run_many([frames[i].crops for i in ok])))
    predictions = []
    for i, (clip, name, (true_label, true_window)) in enumerate(zip(frames, names, truths)):
      base = dict(video=name, checkpoint=self.checkpoint, step=self.step, classes=self.class_names,
                  pooling=self.model.temporal, trained_on=self.trained_on,
                  synthetic_training=self.synthetic_training, num_source_frames=clip.num_source_frames, fps=clip.fps,
                  true_label=true_label, true_window=None if true_window is None else tuple(true_window),
                  frames_without_face=list(clip.frames_without_face), person=clip.person,
                  frames=None if clip.frames_with_face is None else list(clip.frames_with_face))
      if i not in outs:
        predictions.append(record.Prediction(status=clip.status, message=clip.message, **base))
        continue
      out = outs[i]
      predictions.append(record.Prediction(
          status=record.OK, message=clip.message, probabilities=np.exp(out["log_probs"]),
          frame_index=np.asarray(clip.frame_index), frame_time=clip.frame_time, face_box=clip.face_box,
          frame_probabilities=out["frame_probabilities"],
          frame_importance=out["frame_importance"], attention=out["attention"],
          faces=clip.crops if keep_faces else None, **base))
    return predictions

  def run(self, crops: np.ndarray) -> dict[str, np.ndarray | None]:
    """The network on one clip of crops [T, C, C, 3] uint8 (every frame real).

    Returns numpy arrays: log_probs [E], frame_importance [T], frame_scores [T, E],
    frame_probabilities [T, E], attention [T, N, gh, gw] (None without attention).
    """
    return self.run_many([crops])[0]

  def run_many(self, clips: Sequence[np.ndarray]) -> list[dict[str, np.ndarray | None]]:
    """`run` on several clips [T_i, C, C, 3] uint8, their frames packed into shared chunks."""
    c = self.crop_size
    for crops in clips:
      if crops.ndim != 4 or crops.shape[1:] != (c, c, 3) or crops.dtype != np.uint8 or len(crops) == 0:
        raise ValueError(f"crops must be uint8 [T >= 1, {c}, {c}, 3], got {crops.dtype} {crops.shape}")
    return [self._per_clip(per_frame, len(crops)) for per_frame, crops in zip(self._per_frame(clips), clips)]

  def frame_outputs(self, crops: np.ndarray, chunk: int | None = None) -> dict[str, np.ndarray]:
    """The per-frame part alone on crops [T >= 1, C, C, 3] uint8, `chunk` frames per forward pass
    (default batch_frames): frame_scores [T, E] (LSTM: features [T, K]) and attention [T, N, L] if
    any. A live stream (live_model.py) runs each frame once and pools windows with `pool_frames`."""
    c = self.crop_size
    if crops.ndim != 4 or crops.shape[1:] != (c, c, 3) or crops.dtype != np.uint8 or len(crops) == 0:
      raise ValueError(f"crops must be uint8 [T >= 1, {c}, {c}, 3], got {crops.dtype} {crops.shape}")
    return self._per_frame([crops], chunk)[0]

  def pool_frames(self, per_frame: dict[str, np.ndarray]) -> dict[str, np.ndarray | None]:
    """The per-video step on T frames' `frame_outputs` (any T >= 1 of them, e.g. a window): what
    `run` returns for those frames."""
    return self._per_clip(per_frame, len(per_frame["features" if self.lstm else "frame_scores"]))

  # The two compiled programs ---------------------------------------------------------------

  def _frame_outputs(self, params: Any, frames: jnp.ndarray, mask: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """frames [1, B, C, C, 3] uint8, mask [1, B] -> frame_scores [1, B, E] (LSTM: features
    [1, B, K], the spatial module's output) and attention [1, B, N, L] when the model has it."""
    normalized = self.convention.normalize(frames, jnp.float32)
    if self.lstm:
      out, state = self.model.apply({"params": params}, normalized, mask, mutable=["intermediates"],
                                    capture_intermediates=lambda module, method: module.name == "spatial")
      result = {"features": state["intermediates"]["spatial"]["__call__"][0][0]}
    else:
      out = self.model.apply({"params": params}, normalized, mask)
      result = {"frame_scores": out["frame_scores"]}
    if "attention" in out:
      result["attention"] = out["attention"]
    return result

  def _clip_outputs(self, params: Any, per_frame: jnp.ndarray, mask: jnp.ndarray) -> dict[str, jnp.ndarray]:
    """One video padded to a bucket: frame scores [1, Tb, E] (LSTM: features [1, Tb, K]),
    mask [1, Tb] -> log_probs [1, E], frame_importance, frame_scores, frame_probabilities."""
    if self.lstm:
      m = self.model
      out = temporal_lib.LSTMPooling(m.num_classes, m.lstm_hidden, dtype=m.dtype).apply(
          {"params": params["temporal"]}, per_frame, mask)
      log_probs, importance, scores = out["log_probs"], out["frame_importance"], out["frame_scores"]
    else:
      scores = jnp.where(mask[..., None], per_frame, 0.0)
      log_probs, importance = temporal_lib.pool_frame_scores(self.model.temporal, scores, mask,
                                                             self.model.temperature)
    tau = self.model.temperature if self.model.temporal == "softmax" else 1.0
    return dict(log_probs=log_probs, frame_importance=importance, frame_scores=scores,
                frame_probabilities=jax.nn.softmax(scores / tau, axis=-1))

  def _per_frame(self, clips: Sequence[np.ndarray], chunk: int | None = None) -> list[dict[str, np.ndarray]]:
    """Per-frame outputs of every clip's frames, `chunk` (default `batch_frames`) at a time across clip
    boundaries: per clip, frame_scores [T, E] or features [T, K], and attention [T, N, L] if any."""
    k, total = chunk or self.batch_frames, sum(len(crops) for crops in clips)
    bounds = np.cumsum([0] + [len(crops) for crops in clips])
    pending: deque[Any] = deque()
    parts: dict[str, list[np.ndarray]] = {}

    def read_back(out):
      for key, value in out.items():
        parts.setdefault(key, []).append(np.asarray(value, np.float32)[0])  # numpy first: no indexing op to compile

    for start in range(0, total, k):
      frames = np.zeros((1, k, self.crop_size, self.crop_size, 3), np.uint8)
      mask = np.zeros((1, k), bool)
      for i, crops in enumerate(clips):  # the part of clip i inside [start, start + k)
        lo, hi = max(start, bounds[i]), min(start + k, bounds[i + 1])
        if lo < hi:
          frames[0, lo - start:hi - start] = crops[lo - bounds[i]:hi - bounds[i]]
          mask[0, lo - start:hi - start] = True
      pending.append(self._frame_fn(self.params, frames, mask))  # dispatched; runs while the next is packed
      self.forward_passes += 1
      if len(pending) > _IN_FLIGHT:
        read_back(pending.popleft())
    while pending:
      read_back(pending.popleft())
    merged = {key: np.concatenate(values)[:total] for key, values in parts.items()}
    return [{key: value[bounds[i]:bounds[i + 1]] for key, value in merged.items()} for i in range(len(clips))]

  def _per_clip(self, per_frame: dict[str, np.ndarray], t: int) -> dict[str, np.ndarray | None]:
    """The per-video step on one clip's per-frame outputs, padded to its length bucket."""
    length = pipeline.bucket_length(t, self.buckets)
    inputs = per_frame["features" if self.lstm else "frame_scores"]
    padded = np.zeros((1, length) + inputs.shape[1:], inputs.dtype)
    padded[0, :t] = inputs
    mask = np.zeros((1, length), bool)
    mask[0, :t] = True
    out = self._clip_fn(self.params if self.lstm else None, padded, mask)
    out = {key: np.asarray(value, np.float32)[0] for key, value in out.items()}  # numpy before slicing
    result: dict[str, np.ndarray | None] = {
        key: out[key][:t] for key in ("frame_importance", "frame_scores", "frame_probabilities")}
    result["log_probs"] = out["log_probs"]
    attention = per_frame.get("attention")
    result["attention"] = None if attention is None else attention.reshape((t, -1) + self.grid)
    return result
