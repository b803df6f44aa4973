"""Exceptions of the PCM audio layer."""

from __future__ import annotations


class AudioError(Exception):
    """Base class of every error drivers.audio raises."""


class AudioFormatError(AudioError, ValueError):
    """A format, frame or option has a bad value (our side built it wrong)."""


class AudioDeviceError(AudioError):
    """The audio device or transport failed (ALSA error, closed socket, ...)."""


class AudioFramingError(AudioError):
    """The peer of a socket stream broke the framing (bad magic, length, format)."""


class UnknownBackend(AudioError, LookupError):
    """No audio backend of that name is registered."""
