"""Per-line PCM streams: ALSA through pyalsaaudio, and an in-memory backend."""
