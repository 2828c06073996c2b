"""The whole network: VGG16 trunk size, every spatial × temporal combination, masking, config errors."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from videmo.models import video
from videmo.models.vgg import VGG16, VGG16_LAYER_NAMES, VGG16_PARAM_COUNT, max_pool_2x2

import tiny

MODEL = dict(trunk_width_divisor=8, attention_hidden=8, lstm_hidden=8)


def count(params):
  return sum(x.size for x in jax.tree.leaves(params))


def test_vgg16_has_the_published_parameter_count_and_maps_224_to_14x14x512():
  trunk = VGG16()
  images = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
  params = jax.eval_shape(trunk.init, jax.random.key(0), images)
  assert count(params) == VGG16_PARAM_COUNT == 14_714_688
  assert tuple(params["params"]) == VGG16_LAYER_NAMES
  assert jax.eval_shape(trunk.apply, params, images).shape == (2, 14, 14, 512)


def test_max_pool_2x2_is_flax_max_pool_in_value_and_gradient():
  import flax.linen as nn

  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 8, 6, 3)), jnp.float32)  # no ties
  cotangent = jnp.asarray(np.random.default_rng(1).standard_normal((2, 4, 3, 3)), jnp.float32)
  flax_pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))
  ours, ours_vjp = jax.vjp(max_pool_2x2, x)
  theirs, theirs_vjp = jax.vjp(flax_pool, x)
  np.testing.assert_array_equal(ours, theirs)
  np.testing.assert_array_equal(ours_vjp(cotangent)[0], theirs_vjp(cotangent)[0])
  # After a ReLU, tied zeros get no gradient through either.
  relu_then = lambda pool: (lambda x: pool(jax.nn.relu(x)))
  y = jnp.minimum(x, 0.0)  # every window all zeros after the ReLU
  np.testing.assert_array_equal(jax.vjp(relu_then(max_pool_2x2), y)[1](cotangent)[0],
                                jax.vjp(relu_then(flax_pool), y)[1](cotangent)[0])


def test_narrow_trunk_keeps_structure_and_names():
  images = jax.ShapeDtypeStruct((1, 64, 48, 3), jnp.float32)
  params = jax.eval_shape(VGG16(width_divisor=8).init, jax.random.key(0), images)["params"]
  assert tuple(params) == VGG16_LAYER_NAMES
  assert params["conv1_1"]["kernel"].shape == (3, 3, 3, 8)
  assert params["conv5_3"]["kernel"].shape == (3, 3, 64, 64)
  assert jax.eval_shape(VGG16(width_divisor=8).apply, {"params": params}, images).shape == (1, 4, 3, 64)


def clip_batch(b=2, f=5, size=32, seed=0):
  frames = jnp.asarray(np.random.default_rng(seed).standard_normal((b, f, size, size, 3), np.float32))
  mask = np.ones((b, f), bool)
  mask[0, 3:] = False
  return frames, jnp.asarray(mask)


@pytest.mark.parametrize("spatial,temporal", list(itertools.product(video.SPATIALS, ("softmax", "average", "max", "lstm"))))
def test_every_combination_jits_with_finite_gradients_and_ignores_masked_frames(spatial, temporal):
  """Outputs, masking and the gradient of every part after the trunk (the trunk's own backward
  pass is the same for every combination: test_the_trunk_gets_a_gradient)."""
  model = video.build_model(dict(MODEL, spatial=spatial, temporal=temporal, num_heads=2))
  frames, mask = clip_batch()
  params = tiny.random_params(model, seed=1)
  trunk = params.pop("trunk")
  labels = jnp.array([1, 4])

  @jax.jit
  def outputs_and_gradients(head, frames):
    def loss(head):
      o = model.apply({"params": dict(head, trunk=trunk)}, frames, mask)
      return -jnp.mean(jnp.take_along_axis(o["log_probs"], labels[:, None], 1)) + 0.1 * o["penalty"], o
    (_, out), grads = jax.value_and_grad(loss, has_aux=True)(head)
    return out, grads

  out, grads = outputs_and_gradients(params, frames)
  b, f = mask.shape
  assert out["log_probs"].shape == (b, 7)
  assert out["frame_scores"].shape == (b, f, 7)
  assert out["frame_importance"].shape == (b, f)
  assert out["penalty"].shape == ()
  np.testing.assert_allclose(np.exp(out["log_probs"]).sum(-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(out["frame_importance"]).sum(-1), 1.0, atol=1e-5)
  assert np.all(np.asarray(out["frame_importance"])[~np.asarray(mask)] == 0.0)
  if spatial == "average":
    assert "attention" not in out and float(out["penalty"]) == 0.0
  else:
    assert out["attention"].shape == (b, f, 2, 4)  # 32x32 faces -> a 2x2 grid
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  classifier = grads["temporal"]["classifier"] if temporal == "lstm" else grads["classifier"]
  assert float(jnp.abs(classifier["kernel"]).sum()) > 0

  # New content in the masked frames changes no output at all.
  noise = jnp.asarray(50 * np.random.default_rng(2).standard_normal(frames.shape, np.float32))
  out2, _ = outputs_and_gradients(params, jnp.where(mask[:, :, None, None, None], frames, noise))
  for key in out:
    np.testing.assert_array_equal(out[key], out2[key], err_msg=key)


def test_the_trunk_gets_a_gradient():
  model = video.build_model(MODEL)  # the paper's model: attention + softmax pooling
  frames, mask = clip_batch()
  loss = lambda p: -model.apply({"params": p}, frames, mask)["log_probs"][:, 0].sum()  # noqa: E731
  grads = jax.jit(jax.grad(loss))(tiny.random_params(model, seed=1))
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
  assert all(float(jnp.abs(layer["kernel"]).sum()) > 0 for layer in grads["trunk"].values())


def test_penalty_is_averaged_over_real_frames():
  model = video.build_model(dict(MODEL, num_heads=3))
  frames, mask = clip_batch()
  params = {"params": tiny.random_params(model, seed=1)}
  out = jax.jit(model.apply)(params, frames, mask)
  per_frame = np.asarray(jax.vmap(jax.vmap(lambda a: jnp.sum((a @ a.T - jnp.eye(3)) ** 2)))(out["attention"]))
  expected = per_frame[np.asarray(mask)].mean()
  np.testing.assert_allclose(out["penalty"], expected, rtol=1e-5)


def test_a_padded_clip_gives_the_same_prediction_as_the_clip_alone():
  model = video.build_model(MODEL)
  frames, mask = clip_batch()
  params = {"params": tiny.random_params(model, seed=1)}
  apply = jax.jit(model.apply)
  padded = apply(params, frames[:1], mask[:1])
  alone = apply(params, frames[:1, :3], mask[:1, :3])
  np.testing.assert_allclose(padded["log_probs"], alone["log_probs"], atol=1e-5)
  np.testing.assert_allclose(padded["frame_importance"][:, :3], alone["frame_importance"], atol=1e-6)


def test_parameters_are_grouped_under_trunk_spatial_classifier():
  model = video.build_model(MODEL)
  frames, mask = clip_batch()
  params = jax.eval_shape(model.init, jax.random.key(1), frames, mask)["params"]
  assert sorted(params) == ["classifier", "spatial", "trunk"]
  assert params["spatial"]["W1"]["kernel"].shape == (64, 8)  # D x U
  assert params["spatial"]["W2"]["kernel"].shape == (8, 2)  # U x N
  assert params["classifier"]["kernel"].shape == (2 * 64, 7)  # N·D x E


@pytest.mark.parametrize("field,value,message", [
    ("temporal", "mean", r"model.temporal must be one of \('softmax', 'average', 'mean_score', 'max', 'lstm'\)"),
    ("spatial", "cbam", r"model.spatial must be one of \('attention', 'shift', 'average'\)"),
    ("num_heads", 0, r"model.num_heads must be an integer >= 1"),
    ("temperature", -1.0, r"model.temperature must be > 0"),
    ("dtype", "float16", r"model.dtype must be one of \('float32', 'bfloat16', 'float64'\)"),
    ("dtype", "float64", r"model.dtype 'float64' needs 64-bit mode"),
    ("num_head", 2, r"unknown field\(s\) \['num_head'\]"),
])
def test_bad_model_config_names_the_field_and_allowed_values(field, value, message):
  with pytest.raises(ValueError, match=message):
    video.build_model({field: value})


def test_wrong_mask_shape_is_rejected():
  model = video.build_model(MODEL)
  frames, mask = clip_batch()
  with pytest.raises(ValueError, match=r"mask must be \[B, F\]"):
    model.init(jax.random.key(1), frames, mask[:, :2])
