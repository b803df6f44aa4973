"""Exception classes of the updater.

Two families, as in STYLE.md: the bundle or the request was bad (``Rejected``: the
peer broke it, nothing was changed) and we failed while acting (``InstallFailed``:
an I/O error, a full disk, a read-back mismatch).  ``Refused`` is a request that is
well-formed but not allowed in the current boot state.
"""

from __future__ import annotations


class UpdateError(Exception):
    """Base class of every updater error."""


class Rejected(UpdateError):
    """The bundle is malformed, unsigned, tampered with or not for this device."""


class FormatError(Rejected):
    """The bundle's structure or manifest is invalid."""


class SignatureError(Rejected):
    """The manifest's signatures do not satisfy the keyring."""


class DigestMismatch(Rejected):
    """A payload's bytes do not match the digest in the signed manifest."""


class SizeExceeded(Rejected):
    """A payload or decompressed stream exceeds its declared size."""


class Incompatible(Rejected):
    """The bundle is for another product or does not fit this device's slots."""


class SecurityVersionTooLow(Rejected):
    """The bundle's security version is below the rollback floor."""


class Refused(UpdateError):
    """The operation is not allowed in the current boot state."""


class InstallFailed(UpdateError):
    """Writing or checking the target slot failed on our side."""


class StateError(UpdateError):
    """The stored boot state is unreadable or inconsistent."""
