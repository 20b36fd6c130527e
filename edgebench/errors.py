"""The errors a user can cause. Each message says what is wrong and what to do about it.

The CLI prints an :class:`EdgebenchError` as one line and exits non-zero, without a traceback.
Torch-free: imported by the device side too.
"""

from __future__ import annotations


class EdgebenchError(Exception):
    """Base class of every error a user can cause (bad plan, bad data, bad artifact, unreachable device)."""

    exit_code = 1


class ConfigError(EdgebenchError):
    """A plan or target file is malformed: names the file, the key and the allowed values."""

    exit_code = 2


class UnknownNameError(ConfigError):
    """A name that no registry knows (model, attack, dataset, backend, target)."""


class DataError(EdgebenchError):
    """A data set is missing, corrupt, of the wrong shape, or holds NaN / out-of-range values."""


class ArtifactError(EdgebenchError):
    """A model file or cached artifact is missing, corrupt or rejected by the runtime."""


class AttackError(EdgebenchError):
    """An attack was given bad parameters or a model it cannot attack."""


class DeviceError(EdgebenchError):
    """A target could not run a job: unreachable, missing runtime, agent failure."""


class CompressError(EdgebenchError):
    """A compression method cannot handle a model or a layer; names the variant and the layer."""


class ResourceError(EdgebenchError):
    """The host ran out of a resource inside one stage (CUDA memory): names the setting to lower."""


class DiskFullError(EdgebenchError):
    """A disk filled up (the run folder, the cache, the device's work folder): free space and run the same
    command again; finished stages are kept."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk is full: ENOSPC/EDQUOT, SQLite's "database or disk is full", or the same
    words in a library's message (torch's writer wraps the OS error in a RuntimeError)."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    return "disk is full" in text or "no space left" in text or "disk quota" in text
