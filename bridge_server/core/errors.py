"""The one error family. Each boundary (CLI, HTTP, add-on) converts these once.

Every message names the problem and the fix, so it can be shown to a user as it is. A fix
that is a setting names it in parentheses, as the HTTP API spells it: "set the language
(lang)". Each client words it its own way: the CLI as its flag (--lang), the add-on as its field.
"""

import importlib

# The settings messages may name, "(lang)": the CLI shows each as its flag, "(--lang)".
SETTINGS = ("lang", "model", "voice", "engine", "max_chars", "skip_unknown", "fix_sync")


class LipsyncError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class InputError(LipsyncError):
    """The user's input (text, file, option) cannot be used as given."""

    exit_code = 3


class EngineUnavailable(LipsyncError):
    """An engine's package, library or model is missing; the message says how to install it."""

    exit_code = 4


class OutputError(LipsyncError):
    """A result cannot be written where the user asked."""

    exit_code = 5


class TimelineFormatError(InputError):
    """A timeline document is malformed or from a newer, incompatible version."""


class Cancelled(LipsyncError):
    """The user cancelled long work; nothing was written."""

    exit_code = 130


def require(module: str, install: str):
    """Import a heavy dependency or raise EngineUnavailable with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise EngineUnavailable(
            f"the Python package '{module}' is missing ({e}); fix: {install}"
        ) from None
    except (OSError, RuntimeError) as e:  # e.g. a wrapper whose shared library is missing
        raise EngineUnavailable(f"'{module}' cannot load ({e}); fix: {install}") from None
