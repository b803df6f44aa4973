"""Revocation and rotation with thresholds: issue 7 tests 9 and 10."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.update.errors import FormatError, SignatureError, StateError
from firmware.update.keyring import Keyring, key_id
from image import keys
from tests.update.helpers import Sim


def kid(k: Ed25519PrivateKey) -> str:
    return key_id(keys.public_bytes(k)).hex()


def pubs(ks: list[Ed25519PrivateKey]) -> list[bytes]:
    return [keys.public_bytes(k) for k in ks]


def finish(sim: Sim) -> None:
    assert sim.power_on() != ""
    sim.mark_good()


def test_09_revoked_key_is_refused(tmp_path: Path, signing_keys: list[Ed25519PrivateKey]) -> None:
    k0, k1, k2 = signing_keys[:3]
    sim = Sim.create(tmp_path / "dev", [k0, k1])
    # Rotate to a keyring that revokes k1 (signed by k0 under both old and new rings).
    ring2 = Keyring.create(pubs([k0, k2]), version=2, revoked=[kid(k1)])
    sim.install(sim.bundle(security_version=2, keyring=ring2, signers=[k0]))
    finish(sim)
    before = sim.snapshot()
    with pytest.raises(SignatureError, match="1 by revoked keys"):
        sim.install(sim.bundle(security_version=3, signers=[k1]))
    assert sim.snapshot() == before
    # A later keyring cannot quietly re-trust it or forget the revocation.
    sneaky = Keyring.create(pubs([k0, k1]), version=3)
    with pytest.raises(SignatureError, match="drops revocation"):
        sim.install(sim.bundle(security_version=3, keyring=sneaky, signers=[k0, k1]))
    effective = sim.device().keyring()
    assert effective.version == 2 and kid(k1) in effective.revoked


def test_09_revoked_key_cannot_be_trusted_at_the_same_time() -> None:
    k = keys.generate()
    with pytest.raises(FormatError, match="both trusted and revoked"):
        Keyring.create(pubs([k]), revoked=[kid(k)])


def test_10_rotation_during_and_after_with_thresholds(
    tmp_path: Path, signing_keys: list[Ed25519PrivateKey]
) -> None:
    old1, old2, new1, new2, new3 = signing_keys
    sim = Sim.create(tmp_path / "dev", [old1, old2], threshold=2)
    # Threshold 2: one old signature is not enough; the same key twice counts once.
    with pytest.raises(SignatureError, match="1 valid signature"):
        sim.install(sim.bundle(signers=[old1]))
    with pytest.raises(SignatureError, match="1 valid signature"):
        sim.install(sim.bundle(signers=[old1, old1]))
    new_ring = Keyring.create(pubs([new1, new2, new3]), version=2, threshold=2)
    # During: the transition bundle needs 2-of-old AND 2-of-new.
    with pytest.raises(SignatureError, match="new keyring"):
        sim.install(sim.bundle(keyring=new_ring, signers=[old1, old2, new1]))
    with pytest.raises(SignatureError, match="bundle"):
        sim.install(sim.bundle(keyring=new_ring, signers=[old1, new1, new2]))
    sim.install(sim.bundle(keyring=new_ring, signers=[old1, old2, new1, new3]))
    finish(sim)
    assert sim.device().keyring().version == 2
    # After: the old keys alone are refused, 2 of the new keys are accepted, 1 is not.
    with pytest.raises(SignatureError):
        sim.install(sim.bundle(security_version=3, signers=[old1, old2]))
    with pytest.raises(SignatureError):
        sim.install(sim.bundle(security_version=3, signers=[new2]))
    sim.install(sim.bundle(security_version=3, signers=[new2, new3]))
    finish(sim)
    # A keyring rolled back to an older version is refused.
    stale = Keyring.create(pubs([old1, old2]), version=2, threshold=1)
    with pytest.raises(SignatureError, match="does not supersede"):
        sim.install(sim.bundle(security_version=4, keyring=stale, signers=[new1, new2, old1]))


def test_keyring_encoding_round_trips_and_rejects_garbage() -> None:
    ring = Keyring.create(pubs([keys.generate(), keys.generate()]), version=4, threshold=2)
    assert Keyring.from_bytes(ring.to_bytes()) == ring
    for bad in (
        b"",
        b"[]",
        b'{"format":1}',
        ring.to_bytes().replace(b'"threshold":2', b'"threshold":3'),
    ):
        with pytest.raises(FormatError):
            Keyring.from_bytes(bad)


def test_rotated_keyring_cannot_be_forged_in_the_data_partition(
    tmp_path: Path, signing_keys: list[Ed25519PrivateKey]
) -> None:
    k0, k1, attacker = signing_keys[0], signing_keys[1], signing_keys[4]
    sim = Sim.create(tmp_path / "dev", [k0])
    ring2 = Keyring.create(pubs([k0, k1]), version=2)
    sim.install(sim.bundle(security_version=2, keyring=ring2, signers=[k0, k1]))
    finish(sim)
    dev = sim.device()
    chain = Path(dev.trust_chain_path())
    good_chain = chain.read_bytes()
    assert dev.keyring() == ring2
    # A chain link made by someone without a trusted key does not verify.
    from firmware.update.bundle import SIGNING_DOMAIN, Envelope, Image, Manifest

    evil_ring = Keyring.create(pubs([attacker]), version=9)
    m = Manifest("x", "1", 1, (Image("rootfs", "none", 0, "0" * 64, 0, "0" * 64),), evil_ring)
    mb = m.to_bytes()
    forged = Envelope(mb, (keys.sign(attacker, SIGNING_DOMAIN + mb),)).to_bytes()
    chain.write_bytes(good_chain + len(forged).to_bytes(4, "little") + forged)
    with pytest.raises(StateError, match="link 1 does not verify"):
        dev.keyring()
    with pytest.raises(StateError):
        sim.install(sim.bundle(security_version=3, signers=[attacker]))
    # A damaged chain is an error, not a silent fall-back.
    chain.write_bytes(good_chain[:-3])
    with pytest.raises(StateError, match="truncated"):
        dev.keyring()
    chain.write_bytes(good_chain)
    assert dev.keyring() == ring2
