"""Rasterizer: projection, tile binning, compositing kernels and the autograd wrapper."""
