"""storetune: a store's own fine-tuned support model, built from its own data."""

__version__ = "0.1.0"
