"""The configuration refuses exactly what the SIP core cannot hold."""

from __future__ import annotations

from firmware.sip.limits import PJSUA_MAX_ACCOUNTS
from firmware.sip.settings import MAX_USER_ACCOUNTS, RESERVED_ACCOUNTS
from firmware.store import MAX_SIP_ACCOUNTS


def test_store_and_sip_core_agree_on_the_account_budget() -> None:
    assert MAX_SIP_ACCOUNTS == MAX_USER_ACCOUNTS == PJSUA_MAX_ACCOUNTS - RESERVED_ACCOUNTS
