"""Signed bundle verification, A/B slots, boot state, install and mark-good."""
