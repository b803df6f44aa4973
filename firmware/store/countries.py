"""Country codes, line impedances and caller ID standards the configuration accepts.

They come from the country profiles (``firmware/dsp/profiles.py`` and its data file), the
one place that lists them, so that the configuration can never name a country or an
impedance that the signal processing has no profile for.
"""

from __future__ import annotations

import functools

from firmware.dsp.profiles import COUNTRY_CODES, DEFAULT_CODE, CidStandard, all_profiles

# ITU-T E.180 / Q.35 generic tones and timings: the fallback for a country without a profile.
DEFAULT_COUNTRY = DEFAULT_CODE

# ISO 3166-1 alpha-2 codes of the countries with a profile, plus the ITU default.
KNOWN_COUNTRIES: tuple[str, ...] = tuple(COUNTRY_CODES)

# "country" means "whatever the line's country profile says" for the settings below.
FROM_COUNTRY = "country"

__all__ = [
    "DEFAULT_COUNTRY",
    "FROM_COUNTRY",
    "KNOWN_COUNTRIES",
    "CidStandard",
    "known_impedances",
]


@functools.cache
def known_impedances() -> tuple[str, ...]:
    """``country`` and every line impedance some profile uses ("600R", "270R+750R||150nF"...)."""
    used = {p.impedance for p in all_profiles().values() if p.impedance}
    return (FROM_COUNTRY, *sorted(used))
