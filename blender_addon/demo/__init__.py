"""The demo head and its contact sheet: repository tools for `lipsync demo` and the tests.

Not part of the add-on: build.py leaves this folder out of the zips users install.
"""
