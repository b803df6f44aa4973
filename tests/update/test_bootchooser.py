"""Property test of the pure boot state machine: no sequence of events bricks the box."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as hs

from firmware.update import state as st
from firmware.update.errors import Refused

ACTIONS = ("boot", "boot", "good", "install", "install-crash", "rollback", "good-other")


@settings(max_examples=200, deadline=None)
@given(hs.lists(hs.sampled_from(ACTIONS), max_size=60))
def test_any_event_sequence_boots_a_good_or_pending_slot(actions: list[str]) -> None:
    state = st.BootState.factory("A", "1", 1)
    env = st.BootEnv.factory("A")
    booted = "A"
    sv = 1
    floor = state.floor
    for action in actions:
        try:
            if action == "boot":
                choice = st.choose_boot(env)
                env, booted = choice.env, choice.slot
                assert state.slot(booted).status in (st.Status.GOOD, st.Status.PENDING), (
                    actions,
                    state,
                )
                state = st.reconcile(state, env, booted)
            elif action == "good":
                state, env = st.mark_good(state, env, booted)
            elif action == "good-other":
                state, env = st.mark_good(state, env, booted, st.other(booted))
                raise AssertionError("mark-good of the other slot must be refused")
            elif action.startswith("install"):
                target = st.check_can_install(state, booted)
                state, env = st.mark_installing(state, env, target)
                if action == "install":
                    sv += 1
                    rec = st.SlotRecord(version=str(sv), security_version=sv)
                    state, env = st.activate(state, env, target, rec)
            elif action == "rollback":
                state, env = st.rollback(state, env, booted, allow_below_floor=True)
        except Refused:
            pass
        # Invariants after every step.
        assert state.slot(state.last_good).status == st.Status.GOOD
        assert state.slot(env.last_good).status == st.Status.GOOD
        assert state.slot(booted).status in (st.Status.GOOD, st.Status.PENDING)
        assert state.floor >= floor  # the rollback floor never goes down
        floor = state.floor
