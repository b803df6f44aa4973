"""SQLite storage: validated, versioned configuration, call records, voicemail index, audit log."""
