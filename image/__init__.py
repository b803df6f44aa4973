"""Building the root filesystem image and signed firmware bundles."""
