"""A trained network written to a file that runs without videmo: `videmo export` (docs/predict.md).

    videmo export --checkpoint runs/synthemo --format onnx synthemo.onnx
    videmo export --checkpoint runs/synthemo --format stablehlo synthemo.stablehlo

The whole network of a work directory (input normalisation, trunk, spatial attention,
classifier, temporal pooling) for any number of frames T: face crops [1, T, C, C, 3] uint8
and a frame mask [1, T] bool in; log p(c|S) [1, E], p(f|S) [1, T], attention [1, T, N, L]
and frame scores [1, T, E] out.

Modules, one concern each:
  network.py          a work directory's model as one pure function of (frames, mask), with a symbolic T
  metadata.py         what an export carries besides the network: classes, crop size, input convention, ...
  onnx_format.py      --format onnx: the function converted by jax2onnx (the `export` extra)
  stablehlo_format.py --format stablehlo: jax.export's serialised StableHLO (plain JAX)
  cli.py              `videmo export`
  run_onnx.py         an exported ONNX model on face crops in onnxruntime, without JAX (an example)
"""
