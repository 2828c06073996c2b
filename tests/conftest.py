"""Test-wide setup: 8 simulated CPU devices, so multi-device code runs on one machine.

The flag must be set before JAX initialises its backend, hence here, before any test imports jax.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
