"""Spoken prompts: the catalogue, the espeak-ng build step and the never-missing lookup.

- :mod:`firmware.prompts.catalogue`: prompt names and their text per language;
- :mod:`firmware.prompts.build`: ``python -m firmware.prompts build`` renders the catalogue
  to 8 kHz WAV files under ``build/prompts/<lang>/<name>.wav`` (cached by content hash);
- :mod:`firmware.prompts.library`: :class:`PromptLibrary` finds a prompt's audio, custom
  recordings first, and never misses;
- :mod:`firmware.prompts.speech`: numbers, digits and dates as sequences of prompt names.

See docs/prompts.md.
"""
