"""Hardware seams: line-card link, per-line PCM audio, and the simulator behind both."""
