"""lipsync-bridge: text, audio or video in; phonemes, visemes and rig-ready curves out."""

__version__ = "0.1.0"
