"""The admin credential kept in the versioned configuration (``system.admin.password_hash``).

The configuration has no "must change" flag: an empty hash *is* the first-run state, in
which the factory password logs in and must be changed.  Every password change is a new
configuration version with an audit record, like any other setting.
"""

from __future__ import annotations

import dataclasses

from firmware.api.auth import AdminCredential
from firmware.store import ConfigStore

PASSWORD_CHANGE_ACTION = "password"


class ConfigCredentialStore:
    """:class:`firmware.api.auth.CredentialStore` over :class:`firmware.store.ConfigStore`."""

    def __init__(self, store: ConfigStore, *, author: str = "console") -> None:
        self.store = store
        self.author = author

    def load_admin(self) -> AdminCredential | None:
        stored = self.store.current().config.system.admin.password_hash
        return AdminCredential(stored, must_change=False) if stored else None

    def save_admin(self, credential: AdminCredential) -> None:
        if credential.must_change:
            raise ValueError("the configuration cannot hold a password that must be changed")
        config = self.store.current().config
        admin = dataclasses.replace(config.system.admin, password_hash=credential.password_hash)
        system = dataclasses.replace(config.system, admin=admin)
        self.store.apply(
            dataclasses.replace(config, system=system),
            author=self.author,
            summary="admin password changed",
            action=PASSWORD_CHANGE_ACTION,
        )
