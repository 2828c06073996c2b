"""The optimiser: SGD with momentum, SGDR warm restarts, a learning rate per parameter group.

Paper (Sec. 4.2): SGD with momentum and warm restarts (Loshchilov & Hutter), weight decay
5e-5, learning rate 1e-5 for the VGG16 trunk and 0.1 for everything else.

Parameter groups are named in the config by regular expressions over parameter paths
('trunk/conv1_1/kernel', 'spatial/W1/kernel', 'classifier/bias', ...):

    config.optim.groups = {"trunk": {"pattern": "^trunk/", "lr": 1e-5},
                           "head": {"pattern": "^(?!trunk/)", "lr": 0.1, "frozen": False}}

Every parameter must match exactly one group (`re.search`); a parameter matched by none or
by several is an error naming it. A frozen group's parameters never change.

Schedule: within each SGDR cycle the rate follows a cosine from the group's rate down to
`lr * sgdr_min_ratio`, then restarts; the first cycle lasts `sgdr_cycle_steps` steps and each
next one `sgdr_multiplier` times longer (cycles are counted in steps here; the training loop
converts the config's epochs to steps at run time).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import optax

Schedule = Callable[[jnp.ndarray], jnp.ndarray]


def param_path(path: tuple) -> str:
  """'trunk/conv1_1/kernel' for a jax tree path."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path)


def group_labels(params: Any, groups: Mapping[str, Mapping[str, Any]]) -> Any:
  """A pytree like `params` holding each leaf's group name; raises if a leaf is in 0 or 2+ groups."""
  if not groups:
    raise ValueError("optim.groups must name at least one group, e.g. {'all': {'pattern': '.*', 'lr': 0.1}}")
  compiled = {}
  for name, group in groups.items():
    if "pattern" not in group or "lr" not in group:
      raise ValueError(f"optim.groups.{name} needs 'pattern' and 'lr' (and optionally 'frozen'); got {sorted(group)}")
    unknown = set(group) - {"pattern", "lr", "frozen"}
    if unknown:
      raise ValueError(f"optim.groups.{name}: unknown field(s) {sorted(unknown)}; allowed: frozen, lr, pattern")
    compiled[name] = re.compile(group["pattern"])
  problems = []

  def label(path, _):
    name = param_path(path)
    hits = [g for g, pattern in compiled.items() if pattern.search(name)]
    if len(hits) != 1:
      problems.append(f"{name} matches {len(hits)} groups {hits}" if hits else f"{name} matches no group")
      return ""
    return hits[0]

  labels = jax.tree_util.tree_map_with_path(label, params)
  if problems:
    patterns = {g: groups[g]["pattern"] for g in groups}
    raise ValueError(f"optim.groups {patterns}: every parameter must match exactly one group: "
                     + "; ".join(problems))
  return labels


def describe_groups(params: Any, labels: Any) -> list[str]:
  """One line per parameter: its group, path and shape (logged at the start of training)."""
  flat_params = jax.tree_util.tree_flatten_with_path(params)[0]
  flat_labels = jax.tree.leaves(labels)
  return [f"{label:>10}  {param_path(path)}  {tuple(p.shape)}"
          for (path, p), label in zip(flat_params, flat_labels)]


def sgdr_schedule(total_steps: int, cycle_steps: int, multiplier: float = 1.0,
                  min_ratio: float = 0.0) -> Schedule:
  """Unit-peak SGDR: cosine from 1 to min_ratio over cycles of cycle_steps·multiplier^k steps."""
  if total_steps < 1:
    raise ValueError(f"total training steps must be >= 1, got {total_steps}")
  if cycle_steps < 1:
    raise ValueError(f"optim.sgdr_cycle_epochs gives {cycle_steps} steps per cycle; it must give >= 1")
  if multiplier < 1:
    raise ValueError(f"optim.sgdr_multiplier must be >= 1, got {multiplier}")
  cycles, covered, length = [], 0, float(cycle_steps)
  while covered < total_steps:
    steps = max(1, int(round(length)))
    cycles.append(dict(init_value=1.0, peak_value=1.0, warmup_steps=0, decay_steps=steps,
                       end_value=min_ratio))
    covered += steps
    length *= multiplier
  return optax.sgdr_schedule(cycles)


def make_optimizer(params: Any, optim_config: Mapping[str, Any], total_steps: int,
                   steps_per_epoch: int) -> tuple[optax.GradientTransformation, Any, Schedule]:
  """(optimizer, group labels, unit schedule) for the config's `optim` block.

  Fields: groups (see module doc), momentum, nesterov, weight_decay, sgdr_cycle_epochs,
  sgdr_multiplier, sgdr_min_ratio, clip_grad_norm. Weight decay is added to the gradient
  before momentum, as in classic SGD (PyTorch's `weight_decay`). clip_grad_norm > 0 first
  rescales the whole gradient to at most that global norm (the paper does not clip: 0).
  """
  labels = group_labels(params, optim_config["groups"])
  cycle_steps = int(round(optim_config["sgdr_cycle_epochs"] * steps_per_epoch))
  schedule = sgdr_schedule(total_steps, cycle_steps, optim_config["sgdr_multiplier"],
                           optim_config["sgdr_min_ratio"])
  transforms = {}
  for name, group in optim_config["groups"].items():
    if group.get("frozen", False):
      transforms[name] = optax.set_to_zero()
      continue
    lr = float(group["lr"])
    transforms[name] = optax.chain(
        optax.add_decayed_weights(optim_config["weight_decay"]),
        optax.sgd(lambda step, lr=lr: lr * schedule(step), momentum=optim_config["momentum"],
                  nesterov=optim_config["nesterov"]))
  optimizer = optax.multi_transform(transforms, labels)
  clip = optim_config.get("clip_grad_norm", 0.0)
  if clip < 0:
    raise ValueError(f"optim.clip_grad_norm must be >= 0 (0 = no clipping), got {clip}")
  if clip > 0:
    optimizer = optax.chain(optax.clip_by_global_norm(clip), optimizer)
  return optimizer, labels, schedule
