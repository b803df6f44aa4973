"""Telephony signal processing: tones, DTMF, caller ID, call progress, levels (numpy, pure)."""
