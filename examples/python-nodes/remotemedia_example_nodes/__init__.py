"""Example Python nodes for RemoteMedia pipelines (``python:Gain``)."""

from .gain import Gain

__all__ = ["Gain"]
