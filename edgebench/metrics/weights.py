"""The shape of the per-layer weight histograms that :func:`edgebench.compress.stats.weight_histograms` stores
(seed 000, Fig. 6). Torch-free, so code that reads or makes those records need not import torch."""

from __future__ import annotations

# bins of a layer's weight histogram over ±max|W|; odd, so that a centre bin holds the zeros
HIST_BINS = 41
