"""lipsync-bridge: text, audio or video in; phonemes, visemes and rig-ready curves out.

from bridge_server import say, bake, Timeline
speech, timeline = say("Pack my box with five dozen liquor jugs.", viseme_set="arkit")
timeline = bake("dialogue.wav", text="the script of the line")
"""

from .core.curves import CurveSettings
from .core.errors import LipsyncError
from .core.timeline import Timeline
from .pipeline import bake, say

__version__ = "0.1.0"

__all__ = ["CurveSettings", "LipsyncError", "Timeline", "bake", "say", "__version__"]
