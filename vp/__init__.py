"""vp: a headless-browser virtual participant for online meetings."""

__version__ = "0.1.0"
