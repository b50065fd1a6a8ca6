"""linscale: a re-executable reproduction of "Scaling Laws for Linear Complexity Language Models"
(arXiv 2406.16690). See README.md for the layout."""

__version__ = "0.1.0"
