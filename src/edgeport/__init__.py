"""edgeport: turn a trained model into deployable artifacts that provably behave like it."""

__version__ = "0.1.0"
