"""attnlab: sequence models and attention from first principles, each verified against a reference."""

__version__ = "0.1.0"
