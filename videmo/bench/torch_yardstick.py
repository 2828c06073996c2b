"""The same model and training step in PyTorch: a yardstick for the JAX step's speed, nothing more.

PyTorch is never a dependency of videmo: this module imports it only inside its functions,
and `available()` says whether it can (install it with `pip install -e ".[bench]"`).

The module mirrors videmo's network for the paper's configuration (spatial='attention',
temporal='softmax'):

  frames [B, F, S, S, 3] uint8 --normalise (the same InputConvention)--> [B·F, 3, S, S]
  --VGG16 conv1_1..conv5_3 (ReLU, 2x2 max-pool after blocks 1-4, no pool5)--> R [B, F, L, D]
  --A = softmax_L(W2·tanh(W1·Rᵀ)), M = A·R--> V [B, F, N·D] --classifier--> O [B, F, E]
  --temporal softmax pooling--> log p(c|S) [B, E]
  loss = mean over valid clips of −log p(y|S) + penalty_coef · mean over real frames ‖A·Aᵀ − I‖²_F

and the step: zero the gradients, forward, backward, clip the global norm (when the config
clips), SGD with momentum and the weight decay added to the gradient (torch.optim.SGD with
one parameter group per videmo group, at the group's learning rate). `copy_params` copies a
flax parameter tree in (conv kernels HWIO -> OIHW, dense kernels [in, out] -> [out, in]), so
`check_against_jax` can compare the loss, the gradient norm and the parameters after one
step with the JAX step's on the same weights and batch.
"""

from __future__ import annotations

import importlib.util
from typing import Any, Mapping

import numpy as np

from videmo.models.vgg import VGG16_BLOCKS
from videmo.train import optim

INSTALL_HINT = 'the PyTorch comparison needs PyTorch: pip install -e ".[bench]"'


def available() -> bool:
  """Whether PyTorch can be imported (without importing it)."""
  try:
    return importlib.util.find_spec("torch") is not None
  except ValueError:  # torch in sys.modules as None: blocked
    return False


def check_supported(model_config: Mapping[str, Any]) -> None:
  """The yardstick covers the paper's model only; raise naming the field otherwise."""
  for field, value in (("spatial", "attention"), ("temporal", "softmax")):
    if model_config[field] != value:
      raise ValueError(f"the PyTorch yardstick implements model.{field}={value!r} only, "
                       f"got {model_config[field]!r}")
  if model_config.get("dropout_rate", 0.0):
    raise ValueError("the PyTorch yardstick has no dropout; use model.dropout_rate=0")


def build_module(model_config: Mapping[str, Any]):
  """The PyTorch network for a model config (see the module doc); float32 parameters."""
  import torch
  from torch import nn

  check_supported(model_config)

  class VideoEmotionNet(nn.Module):

    def __init__(self):
      super().__init__()
      divisor = model_config["trunk_width_divisor"]
      layers, c_in = [], 3
      for b, block in enumerate(VGG16_BLOCKS):
        for channels in block:
          layers += [nn.Conv2d(c_in, channels // divisor, 3, padding=1), nn.ReLU(inplace=True)]
          c_in = channels // divisor
        if b < len(VGG16_BLOCKS) - 1:
          layers.append(nn.MaxPool2d(2, 2))
      self.trunk = nn.Sequential(*layers)
      self.dim, self.heads = c_in, model_config["num_heads"]
      self.w1 = nn.Linear(c_in, model_config["attention_hidden"], bias=False)
      self.w2 = nn.Linear(model_config["attention_hidden"], self.heads, bias=False)
      self.classifier = nn.Linear(self.heads * c_in, model_config["num_classes"])
      self.temperature = float(model_config["temperature"])

    def forward(self, images, mask):
      """images [B, F, 3, S, S] (normalised), mask [B, F] bool -> (log_p_class [B, E], penalty [])."""
      b, f = images.shape[:2]
      local = self.trunk(images.flatten(0, 1))                      # [B·F, D, h, w]
      local = local.flatten(2).transpose(1, 2).reshape(b, f, -1, self.dim)  # R [B, F, L, D]
      logits = self.w2(torch.tanh(self.w1(local)))                  # [B, F, L, N]
      attention = torch.softmax(logits.transpose(-1, -2).float(), dim=-1)  # A [B, F, N, L]
      pooled = torch.matmul(attention.to(local.dtype), local)       # M [B, F, N, D]
      real = mask[:, :, None, None]
      attention = torch.where(real, attention, torch.zeros_like(attention))
      gram = torch.matmul(attention, attention.transpose(-1, -2))
      eye = torch.eye(self.heads, dtype=gram.dtype, device=gram.device)
      penalty = ((gram - eye) ** 2).sum(dim=(-2, -1))               # [B, F]
      penalty = torch.where(mask, penalty, torch.zeros_like(penalty)).sum() / mask.sum().clamp(min=1)
      scores = self.classifier(pooled.reshape(b, f, -1)).float()    # O [B, F, E]
      scores = torch.where(mask[..., None], scores, torch.zeros_like(scores))
      z = torch.where(mask[..., None], scores / self.temperature, torch.full_like(scores, -float("inf")))
      log_joint = z - torch.logsumexp(z.reshape(b, -1), dim=-1)[:, None, None]
      return torch.logsumexp(log_joint, dim=1), penalty

  return VideoEmotionNet()


def _flax_names(module) -> dict[str, str]:
  """torch parameter name -> flax parameter path ('trunk/conv1_1/kernel', ...)."""
  names, convs = {}, [name for name, m in module.trunk.named_children() if type(m).__name__ == "Conv2d"]
  flax_convs = [f"conv{b + 1}_{i + 1}" for b, block in enumerate(VGG16_BLOCKS) for i in range(len(block))]
  for index, flax_name in zip(convs, flax_convs):
    names[f"trunk.{index}.weight"] = f"trunk/{flax_name}/kernel"
    names[f"trunk.{index}.bias"] = f"trunk/{flax_name}/bias"
  names.update({"w1.weight": "spatial/W1/kernel", "w2.weight": "spatial/W2/kernel",
                "classifier.weight": "classifier/kernel", "classifier.bias": "classifier/bias"})
  return names


def _flat(params: Any) -> dict[str, np.ndarray]:
  import jax

  return {optim.param_path(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def _to_torch_layout(value: np.ndarray) -> np.ndarray:
  if value.ndim == 4:   # conv kernel HWIO -> OIHW
    return value.transpose(3, 2, 0, 1)
  if value.ndim == 2:   # dense kernel [in, out] -> [out, in]
    return value.T
  return value


def copy_params(module, params: Any) -> None:
  """Copy a flax parameter tree of the same model into the torch module (exact, float32)."""
  import torch

  flat = _flat(params)
  names = _flax_names(module)
  missing = sorted(set(flat) - set(names.values()))
  if missing:
    raise ValueError(f"flax parameters with no PyTorch counterpart: {missing}")
  with torch.no_grad():
    for name, tensor in module.named_parameters():
      value = _to_torch_layout(flat[names[name]])
      if tuple(value.shape) != tuple(tensor.shape):
        raise ValueError(f"{name}: flax shape {value.shape} does not match PyTorch shape {tuple(tensor.shape)}")
      tensor.copy_(torch.from_numpy(np.array(value, np.float32)))


def params_to_flax_paths(module) -> dict[str, np.ndarray]:
  """The torch module's parameters keyed by flax path, in flax layout."""
  names = _flax_names(module)
  out = {}
  for name, tensor in module.named_parameters():
    value = tensor.detach().float().cpu().numpy()
    if value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)
    elif value.ndim == 2:
      value = value.T
    out[names[name]] = value
  return out


class TorchStep:
  """One PyTorch training step of `build_module`'s network on a fixed batch (see the module doc).

  Options: channels_last memory format; bf16 autocast (bfloat16 compute, float32 parameters
  and loss, like videmo's mixed precision); torch.compile of the module; the device ('cpu'
  or 'cuda'; `step()` returns a Python float, so it waits for the device).
  """

  def __init__(self, config, params: Any, batch: Mapping[str, np.ndarray], convention,
               channels_last: bool = False, bf16: bool = False, compile: bool = False,
               device: str = "cpu"):
    import torch

    self.torch, self.device = torch, device
    self.config, self.bf16, self.channels_last = config, bf16, channels_last
    self.module = build_module(config.model)
    copy_params(self.module, params)
    self.module = self.module.to(device)
    if channels_last:
      self.module = self.module.to(memory_format=torch.channels_last)
    self.forward = torch.compile(self.module) if compile else self.module
    self.convention = convention
    self.mean = torch.tensor(convention.mean, device=device)
    self.std = torch.tensor(convention.std, device=device)
    tensor = lambda name, dtype=None: torch.from_numpy(np.array(batch[name], dtype=dtype)).to(device)
    self.frames, self.mask = tensor("frames"), tensor("mask")
    self.label, self.valid = tensor("label", np.int64), tensor("valid", np.float32)
    labels = optim.group_labels(params, config.optim.groups)
    by_path = _label_map(params, labels)
    names = _flax_names(self.module)
    groups = []
    for group_name, group in config.optim.groups.items():
      members = [p for n, p in self.module.named_parameters() if by_path[names[n]] == group_name]
      if group.get("frozen", False):
        for p in members:
          p.requires_grad_(False)
        continue
      if members:
        groups.append(dict(params=members, lr=float(group["lr"])))
    self.optimizer = torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=config.optim.momentum,
                                     nesterov=config.optim.nesterov, weight_decay=config.optim.weight_decay)
    self.clip = float(config.optim.get("clip_grad_norm", 0.0))
    self.trained = [p for g in groups for p in g["params"]]

  def _images(self):
    """uint8 [B, F, S, S, 3] -> normalised float [B, F, 3, S, S] (the JAX step's normalisation)."""
    c = self.convention
    x = self.frames.flip(-1) if c.channel_order == "BGR" else self.frames
    x = (x.float() * c.scale - self.mean) / self.std
    x = x.permute(0, 1, 4, 2, 3)  # a view: the memory stays channels-last
    if not self.channels_last:
      x = x.contiguous()
    return x

  def loss(self):
    """(loss, cross-entropy, penalty) on the batch at the current parameters (with autograd)."""
    torch = self.torch
    with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
      log_p_class, penalty = self.forward(self._images(), self.mask)
    nll = -log_p_class.float().gather(1, self.label[:, None])[:, 0]
    cross_entropy = (nll * self.valid).sum() / self.valid.sum().clamp(min=1)
    return cross_entropy + self.config.penalty_coef * penalty.float(), cross_entropy, penalty

  def step(self) -> float:
    """One training step; returns the gradient's global norm before clipping."""
    torch = self.torch
    self.optimizer.zero_grad(set_to_none=True)
    loss, _, _ = self.loss()
    loss.backward()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in self.trained]))
    if self.clip > 0:
      torch.nn.utils.clip_grad_norm_(self.trained, self.clip)
    self.optimizer.step()
    self.last_loss = float(loss.detach())
    return float(norm)


def _label_map(params: Any, labels: Any) -> dict[str, str]:
  import jax

  paths = [optim.param_path(path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
  return dict(zip(paths, jax.tree.leaves(labels)))


def relative_difference(a: float, b: float) -> float:
  return abs(a - b) / max(abs(b), 1e-30)


def check_against_jax(torch_step: TorchStep, jax_params_before: Any, jax_params_after: Any,
                      jax_metrics: Mapping[str, Any]) -> dict[str, float]:
  """One torch step from the same weights as one JAX step; relative differences of the loss,
  of the gradient's global norm, and of the update (‖Δ_torch − Δ_jax‖ / ‖Δ_jax‖ over all parameters)."""
  grad_norm = torch_step.step()
  after = params_to_flax_paths(torch_step.module)
  before, jax_after = _flat(jax_params_before), _flat(jax_params_after)
  difference = sum(float(np.sum(np.square(after[path] - value))) for path, value in jax_after.items())
  update = sum(float(np.sum(np.square(value - before[path]))) for path, value in jax_after.items())
  return dict(loss=relative_difference(torch_step.last_loss, float(jax_metrics["loss"])),
              grad_norm=relative_difference(grad_norm, float(jax_metrics["grad_norm"])),
              update=float(np.sqrt(difference / max(update, 1e-30))))
