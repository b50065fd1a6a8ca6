"""linscale: a re-executable reproduction of "Scaling Laws for Linear Complexity Language Models"
(arXiv 2406.16690). See README.md for the layout."""

__version__ = "0.1.0"

import warnings as _warnings

# tqdm.auto (imported by datasets / transformers) warns inside Jupyter kernels that ipywidgets is missing;
# the book's chapters run in such kernels and would show it as error output. Progress bars work without.
_warnings.filterwarnings("ignore", message="IProgress not found")
