"""Timing shared by `sombench latency` and the cost projection, and the paper's Table 2."""
