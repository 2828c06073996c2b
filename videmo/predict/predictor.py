"""`Predictor`: a trained model applied to whole videos, with what it looked at and when.

    from videmo.predict import Predictor
    predictor = Predictor("runs/synthemo")             # or runs/synthemo/checkpoints/700
    prediction = predictor.predict("clip.mp4")         # a file, a frame folder, or frames [T, H, W, 3] uint8
    prediction.label, prediction.probability, prediction.top(3)
    prediction.to_json()                               # the fields: videmo/predict/record.py

The model is rebuilt from the work directory's config and restored from its checkpoint
(videmo/predict/workdir.py); faces are found and cropped as preparation and evaluation do
(videmo/predict/faces_input.py) and normalised with the run's input convention.

Shapes (T frames seen, C x C crops, E classes, N heads, L = (C/16)^2 = gh * gw):
every frame goes through the network in chunks of `batch_frames` ([1, K, C, C, 3], the
last chunk padded and masked, so one compiled program serves every video). A frame's
outputs (class scores o [E], attention [N, L]) do not depend on the other frames, so the
temporal pooling then runs once over all T frames' scores [1, T, E], giving exactly what a
single call on the whole clip gives (a test checks it) without holding T frames' activations
at once. The LSTM baseline pools with a recurrent state, so its clips run in one call
(padded to a power of two frames).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from videmo.data.preparation import clip_processing, faces
from videmo.models import temporal as temporal_lib
from videmo.models import video
from videmo.models.input_convention import InputConvention
from videmo.models.vgg import VGG16_STRIDE
from videmo.predict import faces_input, record, workdir as workdir_lib
from videmo.train import run_dir


def load_params(run: workdir_lib.TrainedRun, model: Any) -> tuple[Any, int]:
  """(parameters, step) of a run's checkpoint, restored onto one device from a shape-only
  target (`checkpoint.restore_target`: nothing initialised or compiled); the optimiser state
  is dropped."""
  from videmo.train import checkpoint as checkpoint_lib

  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = checkpoint_lib.restore_target(model, run.config.optim, run.crop_size, device)
  state, step = checkpoint_lib.restore_params(run.checkpoint, target)
  return state.params, int(step)


class Predictor:
  """A trained model, ready to predict videos (see the module docstring).

  Args:
    checkpoint: a work directory (latest step), its `checkpoints` folder, or a step folder.
    num_frames: frames the model sees per video: None = as the run evaluates
      (config.input.eval_num_frames; 0 there = every frame with a face), 0 = every frame
      with a face, n = n evenly spaced ones.
    batch_frames: frames per forward pass (memory vs. speed; the result does not change).
  """

  def __init__(self, checkpoint: str | os.PathLike, *, num_frames: int | None = None, batch_frames: int = 32):
    run = workdir_lib.open_run(checkpoint)
    model = video.build_model(dict(run.config.model.to_dict(), num_classes=len(run.class_names)))
    params, step = load_params(run, model)
    if num_frames is None:
      num_frames = int(run.config.input.eval_num_frames)
    step_dir = run_dir.step_dir(run.workdir, step)
    self._setup(model, params, run.convention, run.class_names, run.clip_options, run.crop_size,
                num_frames=num_frames, batch_frames=batch_frames, checkpoint=os.fspath(step_dir), step=step)

  @classmethod
  def from_parts(cls, model: video.VideoEmotionNet, params: Any, convention: InputConvention,
                 class_names: Sequence[str], clip_options: clip_processing.ClipOptions, crop_size: int, *,
                 num_frames: int = 0, batch_frames: int = 32, checkpoint: str = "", step: int = 0) -> "Predictor":
    """A predictor for a model already in memory (e.g. right after training, or in evaluation)."""
    predictor = cls.__new__(cls)
    predictor._setup(model, params, convention, class_names, clip_options, crop_size, num_frames=num_frames,
                     batch_frames=batch_frames, checkpoint=checkpoint, step=step)
    return predictor

  def _setup(self, model, params, convention, class_names, clip_options, crop_size, *, num_frames: int,
             batch_frames: int, checkpoint: str, step: int) -> None:
    if batch_frames < 1:
      raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
    if num_frames < 0:
      raise ValueError(f"num_frames must be >= 0 (0 = every frame with a face), got {num_frames}")
    if crop_size > clip_options.face.face_size:
      raise ValueError(f"input.crop_size {crop_size} is larger than the faces ({clip_options.face.face_size}x"
                       f"{clip_options.face.face_size})")
    self.model, self.params, self.convention = model, params, convention
    self.class_names = tuple(class_names)
    self.clip_options = clip_options
    self.crop_size = int(crop_size)
    self.num_frames = int(num_frames)
    self.batch_frames = int(batch_frames)
    self.checkpoint, self.step = checkpoint, int(step)
    self._face_models: faces.FaceModels | None = None

    def apply(params, frames, mask):
      out = model.apply({"params": params}, convention.normalize(frames, jnp.float32), mask)
      return {k: v for k, v in out.items() if k != "penalty"}

    self._apply = jax.jit(apply)

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

  # Faces ---------------------------------------------------------------------------------

  def faces(self, video_or_frames: str | os.PathLike | np.ndarray | Iterable[np.ndarray], *,
            aligned: bool = False, fps: float | None = None) -> faces_input.FaceFrames:
    """The crops the model sees of a video file, frame folder or frames [T, H, W, 3] uint8."""
    models = None if aligned else self.face_models
    num_frames = self.num_frames or None
    if isinstance(video_or_frames, (str, os.PathLike)):
      return faces_input.faces_from_path(video_or_frames, self.clip_options, models, self.crop_size,
                                         num_frames, aligned)
    return faces_input.faces_from_frames(video_or_frames, self.clip_options, models, self.crop_size,
                                         num_frames, aligned, fps)

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
    base = dict(video=name, checkpoint=self.checkpoint, step=self.step, classes=self.class_names,
                pooling=self.model.temporal, num_source_frames=frames.num_source_frames, fps=frames.fps,
                true_label=true_label, true_window=None if true_window is None else tuple(true_window),
                frames_without_face=list(frames.frames_without_face))
    if frames.status != record.OK:
      return record.Prediction(status=frames.status, message=frames.message, **base)
    out = self.run(frames.crops)
    return record.Prediction(
        status=record.OK, message=frames.message, probabilities=np.exp(out["log_probs"]),
        frame_index=np.asarray(frames.frame_index), frame_probabilities=out["frame_probabilities"],
        frame_importance=out["frame_importance"], attention=out["attention"],
        faces=frames.crops if keep_faces else None, **base)

  def run(self, crops: np.ndarray) -> dict[str, np.ndarray | None]:
    """The network on one clip of crops [T, C, C, 3] uint8 (every frame real).

    Returns numpy arrays: log_probs [E], frame_importance [T], frame_scores [T, E],
    frame_probabilities [T, E], attention [T, N, gh, gw] (None without attention).
    """
    crops = np.asarray(crops)
    c = self.crop_size
    if crops.ndim != 4 or crops.shape[1:] != (c, c, 3) or crops.dtype != np.uint8 or len(crops) == 0:
      raise ValueError(f"crops must be uint8 [T >= 1, {c}, {c}, 3], got {crops.dtype} {crops.shape}")
    t = len(crops)
    if self.model.temporal == "lstm":
      out = self._whole_clip(crops)
    else:
      out = self._frame_by_chunks(crops)
      log_probs, importance = temporal_lib.pool_frame_scores(
          self.model.temporal, jnp.asarray(out["frame_scores"][None]), jnp.ones((1, t), bool), self.model.temperature)
      out.update(log_probs=np.asarray(log_probs[0]), frame_importance=np.asarray(importance[0]))
    tau = self.model.temperature if self.model.temporal == "softmax" else 1.0
    out["frame_probabilities"] = np.asarray(jax.nn.softmax(jnp.asarray(out["frame_scores"]) / tau, axis=-1))
    if out.get("attention") is not None:
      gh, gw = self.grid
      out["attention"] = out["attention"].reshape(t, -1, gh, gw)
    else:
      out["attention"] = None
    return out

  def _frame_by_chunks(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame outputs of T crops, `batch_frames` at a time: frame_scores [T, E], attention [T, N, L]."""
    t, k = len(crops), self.batch_frames
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, t, k):
      chunk = crops[start:start + k]
      frames = np.zeros((1, k) + crops.shape[1:], np.uint8)
      frames[0, :len(chunk)] = chunk
      mask = np.zeros((1, k), bool)
      mask[0, :len(chunk)] = True
      out = self._apply(self.params, frames, mask)
      for key in ("frame_scores", "attention"):
        if key in out:
          parts.setdefault(key, []).append(np.asarray(out[key][0, :len(chunk)], np.float32))
    return {key: np.concatenate(values) for key, values in parts.items()}

  def _whole_clip(self, crops: np.ndarray) -> dict[str, np.ndarray]:
    """All outputs of one call on the whole clip, padded to a power of two frames (>= batch_frames)."""
    t = len(crops)
    length = max(self.batch_frames, 1 << (t - 1).bit_length())
    frames = np.zeros((1, length) + crops.shape[1:], np.uint8)
    frames[0, :t] = crops
    mask = np.zeros((1, length), bool)
    mask[0, :t] = True
    out = self._apply(self.params, frames, mask)
    result = {key: np.asarray(out[key][0, :t], np.float32) for key in ("frame_scores", "frame_importance", "attention")
              if key in out}
    result["log_probs"] = np.asarray(out["log_probs"][0], np.float32)
    return result
