"""videmo: emotion recognition in face videos with spatial attention and temporal softmax pooling.

JAX/Flax implementation of "Emotion recognition with spatial attention and temporal softmax
pooling". See README.md for the quick start and docs/design.md for the map of the code.
"""

__version__ = "0.1.0"
