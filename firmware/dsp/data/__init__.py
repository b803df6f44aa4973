"""Data files of the signal-processing package (country profiles)."""
