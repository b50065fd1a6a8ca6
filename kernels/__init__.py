"""Triton kernels for the linear token mixers, imported as ``linscale.kernels``.

Not yet implemented: until they land, ``linscale.ops.chunk_linear_attention`` uses the PyTorch
chunked form on every device.
"""
