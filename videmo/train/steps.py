"""Pure training and evaluation steps (jit-compiled by the loop over the `data` mesh).

Batches (B clips, F frames, S×S crops):
  frames [B, F, S, S, 3] uint8   faces as stored; normalised inside the step
  mask   [B, F] bool              True = real frame
  label  [B] int32
  valid  [B] bool                 False = padding clip (evaluation fills the last batch)

Loss = the classification loss (videmo/train/losses.py: mean over usable clips of −log p(y|S);
for AVG, eq. 7's per-frame cross-entropy) + penalty_coef · (attention penalty), the penalty
being ‖A·Aᵀ − I‖²_F averaged over real frames (paper Sec. 3.2). A clip that is padding or has
no real frame contributes nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from videmo.train import losses

Batch = dict[str, jnp.ndarray]
Normalise = Callable[[jnp.ndarray], jnp.ndarray]


@flax.struct.dataclass
class TrainState:
  """Everything a checkpoint holds: the step, the parameters and the optimiser state."""

  step: jnp.ndarray
  params: Any
  opt_state: Any


def _loss(model: nn.Module, params: Any, batch: Batch, normalise: Normalise, penalty_coef: float,
          rng: jax.Array | None) -> tuple[jnp.ndarray, dict]:
  frames = normalise(batch["frames"])
  rngs = {"dropout": rng} if rng is not None else None
  out = model.apply({"params": params}, frames, batch["mask"], rngs=rngs,
                    deterministic=rng is None)
  cross_entropy = losses.classification_loss(out, batch["label"], batch["mask"], batch["valid"], model.temporal)
  loss = cross_entropy + penalty_coef * out["penalty"]
  usable = losses.usable_clips(batch["mask"], batch["valid"])
  correct = usable & (jnp.argmax(out["log_probs"], -1) == batch["label"])
  metrics = dict(loss=loss, cross_entropy=cross_entropy, penalty=out["penalty"],
                 accuracy=jnp.sum(correct) / jnp.maximum(jnp.sum(usable), 1))
  return loss, metrics


def _all_finite(tree: Any) -> jnp.ndarray:
  return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def make_train_step(model: nn.Module, optimizer: optax.GradientTransformation, normalise: Normalise,
                    penalty_coef: float, schedule: Callable | None = None):
  """train_step(state, batch, rng) -> (state, metrics).

  A non-finite loss, gradient or updated parameter leaves the state unchanged
  (metrics['finite'] = 0), so the loop can stop with the last good state intact.
  """

  def train_step(state: TrainState, batch: Batch, rng: jax.Array) -> tuple[TrainState, dict]:
    rng = jax.random.fold_in(rng, state.step)
    grad_fn = jax.value_and_grad(_loss, argnums=1, has_aux=True)
    (loss, metrics), grads = grad_fn(model, state.params, batch, normalise, penalty_coef, rng)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.isfinite(loss) & _all_finite(grads) & _all_finite(params)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    new_state = TrainState(step=state.step + jnp.where(finite, 1, 0),
                           params=keep(params, state.params), opt_state=keep(opt_state, state.opt_state))
    metrics = dict(metrics, finite=finite.astype(jnp.float32), grad_norm=optax.tree.norm(grads))
    if schedule is not None:
      metrics["lr_scale"] = schedule(state.step)
    return new_state, metrics

  return train_step


def make_eval_step(model: nn.Module, normalise: Normalise):
  """eval_step(params, batch) -> sums over valid clips, plus per-clip log-probabilities.

  Returns dict(loss_sum (clip cross-entropy −log p(y|S), whatever the pooling), correct, count,
  log_probs [B, E], frame_importance [B, F] = p(f|S), frame_evidence [B, F] = o_fĉ, each frame's
  score for the predicted class ĉ, frame_scores [B, F, E], and attention [B, F, N, L] for a model
  with spatial attention); the sums add up exactly across batches and devices.
  """

  def eval_step(params: Any, batch: Batch) -> dict:
    out = model.apply({"params": params}, normalise(batch["frames"]), batch["mask"])
    usable = losses.usable_clips(batch["mask"], batch["valid"])
    nll = -jnp.take_along_axis(out["log_probs"], batch["label"][:, None], axis=1)[:, 0]
    predicted = jnp.argmax(out["log_probs"], -1)
    return dict(
        loss_sum=jnp.sum(jnp.where(usable, nll, 0.0)),
        correct=jnp.sum((predicted == batch["label"]) & usable),
        count=jnp.sum(usable.astype(jnp.int32)),
        log_probs=out["log_probs"],
        frame_importance=out["frame_importance"],
        frame_evidence=jnp.take_along_axis(out["frame_scores"], predicted[:, None, None], axis=2)[..., 0],
        frame_scores=out["frame_scores"],
        **({"attention": out["attention"]} if "attention" in out else {}),
    )

  return eval_step
