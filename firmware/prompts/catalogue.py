"""The prompt catalogue: every default prompt's name and its text in each language.

Phrases live in ``catalogue.toml`` next to this module (one table a prompt, a key a
language); names are kebab-case (``vm-new-messages``).  The numbers are added here,
because espeak-ng reads a numeral in the voice's own language ("42" is "zweiundvierzig"
in German).  The catalogue is validated when first loaded: a bad entry raises
:class:`CatalogueError` naming it.

    >>> catalogue().text("goodbye", "de")
    'Auf Wiederhören.'
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Final

DATA_FILE: Final = "catalogue.toml"
SCHEMA: Final = 1
DEFAULT_LANGUAGE: Final = "en"
# Languages the catalogue has text for, and the espeak-ng voice (``espeak-ng --voices``,
# 1.51) that speaks each.  A country whose language is not here gets English prompts.
VOICES: Final[Mapping[str, str]] = MappingProxyType(
    {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es", "it": "it", "nl": "nl", "pt": "pt"}
)
LANGUAGES: Final = tuple(VOICES)
NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")  # kebab-case; a safe file name
MAX_TEXT_LEN: Final = 400  # a prompt is a sentence or three, never a speech

# say_number() covers 0..MAX_NUMBER with these: 0-99 whole, then hundreds and thousands.
MAX_NUMBER: Final = 9999
NUMBER_NAMES: Final = (
    tuple(f"num-{n}" for n in range(100))
    + tuple(f"num-{n}" for n in range(100, 1000, 100))
    + tuple(f"num-{n}" for n in range(1000, 10000, 1000))
)  # num-0 .. num-9 are also the digits
WEEKDAY_NAMES: Final = (
    "day-monday",
    "day-tuesday",
    "day-wednesday",
    "day-thursday",
    "day-friday",
    "day-saturday",
    "day-sunday",
)  # datetime.weekday() order
MONTH_NAMES: Final = (
    "month-january",
    "month-february",
    "month-march",
    "month-april",
    "month-may",
    "month-june",
    "month-july",
    "month-august",
    "month-september",
    "month-october",
    "month-november",
    "month-december",
)


class CatalogueError(ValueError):
    """The catalogue data is wrong; the message names the prompt and language."""


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Prompt name -> language -> text; every prompt has :data:`DEFAULT_LANGUAGE`."""

    entries: Mapping[str, Mapping[str, str]]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def text(self, name: str, language: str) -> str:
        """The text spoken for ``name`` in ``language`` (English where it has none)."""
        try:
            texts = self.entries[name]
        except KeyError:
            raise CatalogueError(f"no prompt {name!r} in the catalogue") from None
        return texts.get(language, texts[DEFAULT_LANGUAGE])

    def spoken_language(self, name: str, language: str) -> str:
        """The language ``name`` is actually spoken in when ``language`` is asked for."""
        return language if language in self.entries[name] else DEFAULT_LANGUAGE


def language_for(tag: str) -> str:
    """The catalogue language for a BCP 47 tag (a country profile's ``language``):
    ``de-CH`` -> ``de``; a language without text here -> English."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in VOICES else DEFAULT_LANGUAGE


def parse_catalogue(text: str, origin: str = DATA_FILE) -> Catalogue:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{origin}: not valid TOML: {exc}") from None
    if doc.get("schema") != SCHEMA:
        raise CatalogueError(f"{origin}: schema {doc.get('schema')!r}, this code reads {SCHEMA}")
    entries: dict[str, Mapping[str, str]] = {}
    for name, table in doc.items():
        if name == "schema":
            continue
        where = f"{origin}: [{name}]"
        if not NAME_RE.match(name):
            raise CatalogueError(f"{where}: a name is 1-48 of a-z, 0-9 and '-'")
        if not isinstance(table, dict):
            raise CatalogueError(f"{where}: expected a table of language = text")
        for lang, phrase in table.items():
            if lang not in VOICES:
                raise CatalogueError(f"{where}: unknown language {lang!r} (known: {LANGUAGES})")
            if not isinstance(phrase, str) or not phrase.strip():
                raise CatalogueError(f"{where}.{lang}: expected non-empty text")
            if len(phrase) > MAX_TEXT_LEN:
                raise CatalogueError(f"{where}.{lang}: longer than {MAX_TEXT_LEN} characters")
        if DEFAULT_LANGUAGE not in table:
            raise CatalogueError(f"{where}: every prompt needs {DEFAULT_LANGUAGE!r} text")
        entries[name] = MappingProxyType(dict(table))
    for name in NUMBER_NAMES:
        if name in entries:
            raise CatalogueError(f"{origin}: [{name}] is generated, do not list it")
        numeral = name.split("-")[1]
        entries[name] = MappingProxyType(dict.fromkeys(VOICES, numeral))
    for name in WEEKDAY_NAMES + MONTH_NAMES:
        if name not in entries:
            raise CatalogueError(f"{origin}: [{name}] is missing")
    return Catalogue(MappingProxyType(entries))


@functools.cache
def catalogue() -> Catalogue:
    """The shipped catalogue (loaded and validated once)."""
    data = resources.files(__package__ or "firmware.prompts").joinpath(DATA_FILE)
    return parse_catalogue(data.read_text(encoding="utf-8"), f"firmware/prompts/{DATA_FILE}")
