"""Example Python nodes for RemoteMedia pipelines: ``python:Gain`` and ``python:VoiceActivity``."""

from .gain import Gain
from .vad import VoiceActivity

__all__ = ["Gain", "VoiceActivity"]
