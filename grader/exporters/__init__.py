"""Exporters: each turns the one result model into one output format."""

from .gradescope import to_gradescope, write_gradescope
from .terminal import render_text

__all__ = ["render_text", "to_gradescope", "write_gradescope"]
