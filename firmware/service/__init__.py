"""Composition root: configuration -> backends -> services; systemd notify and watchdog."""
