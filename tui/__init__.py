"""Installer console (Textual), a thin client of the control API."""
