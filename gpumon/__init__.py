"""gpumon: run isolated GPU worker pools, watch them live, keep the evidence when they die."""

__version__ = "0.1.0"
