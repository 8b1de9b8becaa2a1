"""summitry: secure video summits between two sides."""

__version__ = "0.1.0"
