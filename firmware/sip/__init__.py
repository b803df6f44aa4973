"""The only package that imports pjsua2: endpoint thread, transports, accounts, calls, media."""
