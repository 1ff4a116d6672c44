"""The one error family of GloveWatch and the exit code each kind maps to.

Every error meant for a user (a bad file, an unusable model, an unwritable data folder, a
store from a newer version ...) is a :class:`GloveWatchError` whose message is one clear
sentence. Pages show the message; the command line prints it on one line and exits with
:attr:`GloveWatchError.exit_code` (see :func:`exit_code`), never with a traceback.
"""

from __future__ import annotations

# Exit codes of ``python -m core``: 0 all inputs processed, 1 some input could not be read
# (the others were still processed), 2 unusable weights, data set, data folder, store or
# arguments, 3 refused by an account's role.
EXIT_OK = 0
EXIT_INPUT = 1
EXIT_UNUSABLE = 2
EXIT_FORBIDDEN = 3


class GloveWatchError(Exception):
    """Base class of errors whose message is meant for the user."""

    exit_code = EXIT_UNUSABLE


class DataFolderError(GloveWatchError, PermissionError):
    """The data folder (``GLOVEWATCH_HOME``) cannot be created or written."""


class ConfigError(GloveWatchError, ValueError):
    """A setting (environment variable) that cannot be used."""


class StoreError(GloveWatchError):
    """The store cannot be opened: not a GloveWatch store, newer schema, locked, full."""


class ModelError(GloveWatchError, ValueError):
    """A weights file that cannot be used (missing, not a model, wrong task, unsafe)."""


class MediaError(GloveWatchError, ValueError):
    """An input that cannot be read as an image or a video; the message says why."""

    exit_code = EXIT_INPUT


class TilingError(GloveWatchError, ValueError):
    """Tile settings that cannot work (tile size, overlap, merge method)."""


class DatasetError(GloveWatchError, ValueError):
    """A data set that cannot be imported or used."""


class TrainingError(GloveWatchError, ValueError):
    """A training run that cannot be started, stopped, resumed or compared."""


class RegistryError(GloveWatchError, ValueError):
    """A promotion or rollback that cannot be done."""


class RuleError(GloveWatchError, ValueError):
    """A station rule, zone or tiling setting that cannot be used."""


class ReviewError(GloveWatchError, ValueError):
    """A review of an episode that cannot be recorded (unknown state or episode)."""


class AccessDenied(GloveWatchError, PermissionError):
    """The signed-in account's role does not allow the action."""

    exit_code = EXIT_FORBIDDEN


def exit_code(exc: BaseException) -> int:
    """The process exit code for an error that ends a command."""
    if isinstance(exc, GloveWatchError):
        return exc.exit_code
    return EXIT_UNUSABLE
