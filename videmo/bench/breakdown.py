"""Where a training step's time goes: the step's parts, each jitted and timed on its own.

On the step's own parameters, batch and shapes (B clips, F frames, S×S, D trunk channels):

  normalise             uint8 frames [B, F, S, S, 3] -> the trunk's float32 input
  trunk forward         VGG16 on [B·F, S, S, 3] -> conv5_3 [B·F, S/16, S/16, D]
  trunk fwd+bwd         the same plus its backward pass: gradients of the trunk's parameters
                        for a given gradient of its output (the frames get none, as in training)
  head fwd+bwd          everything after the trunk, forward and backward: spatial attention,
                        classifier, temporal pooling, penalty and loss, with the gradients of
                        the head's parameters and of the conv5_3 map (the model itself runs,
                        with its trunk replaced by the conv5_3 map through `nn.intercept_methods`)
  optimiser update      the optimiser's update and its application to every parameter

Separately compiled parts cannot fuse across their boundaries, and the step also checks
that the loss, gradients and parameters are finite: "rest" = step − (normalise + trunk
fwd+bwd + head fwd+bwd + optimiser update) is that difference (negative when the whole
step overlaps or fuses work better than its parts do).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from videmo.bench import timing
from videmo.bench.harness import StepBench
from videmo.models.vgg import VGG16
from videmo.train import losses


def _trunk(model: Any) -> nn.Module:
  cls = nn.remat(VGG16) if model.remat else VGG16
  return cls(width_divisor=model.trunk_width_divisor, dtype=model.dtype, conv_impl=model.conv_impl)


def _head_loss(model: Any, penalty_coef: float):
  """loss(params, local, batch): the step's loss with the trunk's output given as `local`."""

  def loss(params, local, batch):
    def replace_trunk(next_fun, args, kwargs, context):
      if context.module.name == "trunk" and context.method_name == "__call__":
        return local
      return next_fun(*args, **kwargs)

    b, f = batch["mask"].shape
    frames = jnp.zeros((b, f, *batch["frames"].shape[2:]), jnp.float32)  # shape only: the trunk is replaced
    with nn.intercept_methods(replace_trunk):
      out = model.apply({"params": params}, frames, batch["mask"])
    return (losses.classification_loss(out, batch["label"], batch["mask"], batch["valid"], model.temporal)
            + penalty_coef * out["penalty"])

  return loss


def breakdown(bench: StepBench, repeats: int, step_seconds: float) -> list[tuple[str, float]]:
  """[(part, median seconds)] for the parts in the module doc, then ('rest', step − parts)."""
  model, params, batch = bench.model, bench.state.params, bench.batch
  b, f, s = bench.sizes
  trunk = _trunk(model)
  trunk_params = params["trunk"]
  normalise = jax.jit(lambda frames: bench.normalise(frames).reshape(b * f, s, s, 3))
  images = normalise(batch["frames"])
  forward = jax.jit(lambda p, x: trunk.apply({"params": p}, x))
  local = forward(trunk_params, images)

  def trunk_grads(p, x):
    out, vjp = jax.vjp(lambda q: trunk.apply({"params": q}, x), p)
    return vjp(jnp.ones_like(out))[0]

  head = jax.jit(jax.grad(_head_loss(model, bench.config.penalty_coef), argnums=(0, 1)))
  grads = jax.tree.map(jnp.ones_like, params)

  def update(g, o, p):
    updates, o = bench.optimizer.update(g, o, p)
    return optax.apply_updates(p, updates), o

  update = jax.jit(update)
  trunk_grads = jax.jit(trunk_grads)

  parts = [
      ("normalise", lambda: normalise(batch["frames"])),
      ("trunk forward", lambda: forward(trunk_params, images)),
      ("trunk fwd+bwd", lambda: trunk_grads(trunk_params, images)),
      ("head fwd+bwd", lambda: head(params, local, batch)),
      ("optimiser update", lambda: update(grads, bench.state.opt_state, params)),
  ]
  results = []
  for name, fn in parts:
    times = timing.time_calls(lambda fn=fn: jax.block_until_ready(fn()), repeats)
    results.append((name, timing.median(times)))
  counted = {"normalise", "trunk fwd+bwd", "head fwd+bwd", "optimiser update"}
  rest = step_seconds - sum(t for name, t in results if name in counted)
  return results + [("rest", rest)]
