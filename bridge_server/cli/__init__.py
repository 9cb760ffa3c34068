"""Every command line: `lipsync COMMAND ...`."""

from .main import main

__all__ = ["main"]
