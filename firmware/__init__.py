"""Ponte appliance firmware: call control, line logic, signal processing, SIP, storage, updates."""
