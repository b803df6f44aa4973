"""Call control: dial plan, features, voicemail, IVR, queues, call records (sans-IO)."""
