"""The only package that imports pjsua2: endpoint thread, transports, accounts, calls, media.

Import ``firmware.sip.endpoint`` for the pjsua2 side; every other module here is pure Python
(settings, events, the inbound policy) and safe to import without pjsua2.
"""
