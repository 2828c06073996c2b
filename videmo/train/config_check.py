"""Early, named checks of an experiment config: fail before any work with the field at fault."""

from __future__ import annotations

import ml_collections

from videmo.models import video
from videmo.models.vgg import VGG16_STRIDE
from videmo.train import splits
from videmo.train.metrics import NO_FACE_POLICIES


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raise ValueError naming the first wrong field and what it allows."""

  def need(condition: bool, field: str, allowed: str) -> None:
    if not condition:
      value = config
      for part in field.split("."):
        value = value[part]
      raise ValueError(f"config.{field} must be {allowed}, got {value!r}")

  model = config.model.to_dict()
  if model.get("num_classes") is None:
    model.pop("num_classes")
  try:
    video.check_model_config(model)
  except ValueError as err:
    raise ValueError(f"config.{err}") from None
  need(isinstance(config.dataset, str) and config.dataset != "", "dataset", "a dataset name such as 'synthemo/small'")
  for field in ("train_split", "eval_split"):
    try:
      splits.parts(config[field])
    except ValueError as err:
      raise ValueError(f"config.{field}: {err}") from None
  need(config.input.num_frames >= 1, "input.num_frames", "an integer >= 1")
  need(config.input.crop_size >= VGG16_STRIDE and config.input.crop_size % VGG16_STRIDE == 0,
       "input.crop_size", f"a positive multiple of {VGG16_STRIDE}")
  need(config.input.workers >= 0, "input.workers", "an integer >= 0")
  need(config.input.decoded_cache_mb >= 0, "input.decoded_cache_mb", "a size in MB >= 0 (0 = no cache)")
  need(config.input.get("decoded_store_mb", 0) >= 0, "input.decoded_store_mb", "a size in MB >= 0 (0 = no store)")
  need(config.input.eval_num_frames >= 0, "input.eval_num_frames", "0 (all frames) or a positive integer")
  need(len(config.input.eval_buckets) > 0 and min(config.input.eval_buckets) >= 1, "input.eval_buckets",
       "a non-empty list of positive clip lengths")
  need(config.batch_size >= 1, "batch_size", "an integer >= 1")
  need(config.eval_batch_size >= 1, "eval_batch_size", "an integer >= 1")
  need(config.num_epochs > 0 or config.num_train_steps > 0, "num_epochs", "> 0 (or set num_train_steps)")
  need(config.penalty_coef >= 0, "penalty_coef", ">= 0")
  need(config.log_every_steps >= 1, "log_every_steps", "an integer >= 1")
  need(config.checkpoint_every_steps >= 1, "checkpoint_every_steps", "an integer >= 1")
  need(config.keep_checkpoints >= 1, "keep_checkpoints", "an integer >= 1")
  need(config.eval_every_epochs >= 0, "eval_every_epochs", ">= 0 (0 = only at the end)")
  need(config.no_face_policy in NO_FACE_POLICIES, "no_face_policy", f"one of {NO_FACE_POLICIES}")
  need(config.num_devices >= 0, "num_devices", "0 (all) or a positive integer")
  need(0 <= config.optim.momentum < 1, "optim.momentum", "in [0, 1)")
  need(config.optim.weight_decay >= 0, "optim.weight_decay", ">= 0")
  need(config.optim.sgdr_cycle_epochs > 0, "optim.sgdr_cycle_epochs", "> 0")
  need(config.optim.sgdr_multiplier >= 1, "optim.sgdr_multiplier", ">= 1")
  need(0 <= config.optim.sgdr_min_ratio <= 1, "optim.sgdr_min_ratio", "in [0, 1]")
  from_run = config.init.get("from_run") or ""
  if from_run and config.init.weights:
    raise ValueError("config.init.weights and config.init.from_run are both set; a run starts from converted "
                     "weights or from a trained run, not both: leave one of them empty")
  pretrain = config.get("pretrain")
  if pretrain is not None:
    _check_pretrain(config, pretrain)
  elif config.init.pretrained_required and not config.init.weights and not from_run:
    raise ValueError(
        "config.init.weights is empty, but this config fine-tunes a pre-trained VGG-Face trunk as the "
        "paper does: convert the weights with `videmo convert-weights` and pass "
        "--config.init.weights=DIR (or start from a trained run with --config.init.from_run=WORKDIR), "
        "or pass --config.init.pretrained_required=False to train from scratch")


def _check_pretrain(config: ml_collections.ConfigDict, pretrain) -> None:
  """config.pretrain: a whole config whose trunk fits this one, and no other source of weights."""
  if not isinstance(pretrain, ml_collections.ConfigDict):
    raise ValueError(f"config.pretrain must be None or a whole experiment config, got {pretrain!r}")
  for field in ("weights", "from_run"):
    if config.init.get(field):
      raise ValueError(f"config.pretrain and config.init.{field} are both set; the pre-training run makes "
                       f"the trunk, so leave config.init.{field} empty")
  try:
    check_config(pretrain)
  except ValueError as err:
    raise ValueError(str(err).replace("config.", "config.pretrain.", 1)) from None
  if pretrain.model.trunk_width_divisor != config.model.trunk_width_divisor:
    raise ValueError(f"config.pretrain.model.trunk_width_divisor is {pretrain.model.trunk_width_divisor} but "
                     f"config.model.trunk_width_divisor is {config.model.trunk_width_divisor}; the pre-trained "
                     f"trunk must have this run's width")
