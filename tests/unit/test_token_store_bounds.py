"""L2: the token store is bounded, and purging costs O(log n) a token, not a scan per call."""

from __future__ import annotations

import pytest

from voxgate.server.auth import ALL_SCOPES, Authenticator, AuthError, Principal

KEY = Principal(owner="key_a", scopes=ALL_SCOPES)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_l2_minting_past_the_cap_is_refused_with_rate_limited_until_one_expires() -> None:
    clock = Clock()
    auth = Authenticator(["k"], max_live_tokens=100, clock=clock)
    tokens = [await auth.mint_token(KEY, 60) for _ in range(100)]
    with pytest.raises(AuthError) as refused:
        await auth.mint_token(KEY, 60)
    assert refused.value.code == "RATE_LIMITED" and refused.value.status == 429
    assert "retry in 60 s" in refused.value.message
    assert (await auth.held())["tokens"] == 100
    await auth.redeem_token(tokens[0])  # a spent token frees its place at once
    await auth.mint_token(KEY, 60)
    clock.now = 61  # and every expired one frees its own
    await auth.mint_token(KEY, 60)
    assert (await auth.held())["tokens"] == 1


async def test_l2_resume_tokens_past_the_cap_drop_the_one_closest_to_expiry() -> None:
    auth = Authenticator(["k"], max_live_tokens=3, clock=Clock())
    first = await auth.mint_resume_token("sess_1", "o", 10)
    others = [await auth.mint_resume_token(f"sess_{i}", "o", 100) for i in range(2, 5)]
    assert (await auth.held())["resume_tokens"] == 3
    with pytest.raises(AuthError):
        await auth.check_resume_token(first)
    assert all([(await auth.check_resume_token(t)).resume_of for t in others])


async def test_l2_spent_tokens_do_not_pile_up_in_the_expiry_heap() -> None:
    auth = Authenticator(["k"], max_live_tokens=10, clock=Clock())
    for _ in range(5000):  # mint and spend at once, far more than the cap, inside one lifetime
        await auth.redeem_token(await auth.mint_token(KEY, 600))
    held = await auth.held()
    assert held["tokens"] == 0 and held["expiries"] <= 2 * 0 + 64 + 1
