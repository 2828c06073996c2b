"""Published and converted weight files for the VGG16 trunk; `videmo.models` never imports this.

  common        SourceWeights, WeightFormat, WeightFileError, the releases' constants
                (FC_NAMES, VGGFACE_CLASSES, conventions), conv_plan and the checks shared by
                every reader
  formats       the `--format` registry (formats, read, sniff), to_rgb and convert_weights
  pth           PyTorch state dicts: vggface-pth, torchvision-vgg16, torchvision-vgg16-features
  torch_pickle  a safe reader of torch.save files (numpy only, allow-listed globals)
  matconvnet    MatConvNet .mat: vggface-mat
  caffe         Caffe .caffemodel: vggface-caffe (protobuf wire format, no Caffe)
  converted     the converted directory (params.npz + metadata.json): writing, reading, and
                strict loading into a model (load_trunk_into, LoadReport)

Nothing is imported here, and importing a module needs numpy only (the readers also ml_dtypes
and, when reading a .mat, scipy): flax and jax are imported by the functions that handle a
model's parameters, so `videmo convert-weights --help` and reading a converted directory's
convention stay quick. See docs/pretrained.md.
"""
