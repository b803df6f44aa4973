"""Country codes and line impedances the configuration accepts.

This is the ONE place that lists them.  The country profiles themselves (tones, ring
cadences, caller ID, timing windows, impedances) are being written in
``firmware/dsp/profiles``; when that module is importable from the store layer, replace
these tuples with the profile registry's keys so the two can never disagree.
"""

from __future__ import annotations

# ITU-T E.180 / Q.35 generic tones and timings: the fallback for a country without a profile.
DEFAULT_COUNTRY = "ITU"

# ISO 3166-1 alpha-2 codes of the countries with a profile, plus the ITU default.
KNOWN_COUNTRIES: tuple[str, ...] = (
    "ITU",
    "US",
    "CA",
    "GB",
    "IE",
    "DE",
    "FR",
    "IT",
    "ES",
    "PT",
    "BR",
    "NL",
    "BE",
    "CH",
    "AT",
    "SE",
    "NO",
    "DK",
    "FI",
    "PL",
    "AU",
    "NZ",
    "JP",
    "IN",
    "ZA",
)

# Names of the line impedances a SLIC/DAA can be set to.  "country" means the profile's
# own; the others name the common networks (ETSI TBR21 / CTR21 complex, BT3 for the UK,
# TN12 for Australia, plain resistive 600/900 ohm).
KNOWN_IMPEDANCES: tuple[str, ...] = (
    "country",
    "600R",
    "900R",
    "600R+2.16uF",
    "900R+2.16uF",
    "CTR21",
    "BT3",
    "TN12",
)
