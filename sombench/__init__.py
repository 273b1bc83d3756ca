"""sombench: a benchmark harness for online RL with one-step generative policies."""

__version__ = "0.1.0"
