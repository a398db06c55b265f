"""ServerPool: least-busy choice, rotation of ties, cool-off with doubling, fail-over."""

from __future__ import annotations

import pytest

from imagebot.providers.base import BadResponse, Unavailable
from imagebot.providers.server_pool import ServerPool

A, B, C = "http://a:1", "http://b:1", "http://c:1"


class Clock:
    """A clock the test moves by hand, so cool-offs need no sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_idle_servers_take_turns() -> None:
    pool = ServerPool([A, B, C])
    picked = []
    for _ in range(6):
        async with pool.lease() as url:
            picked.append(url)
    assert picked == [A, B, C, A, B, C]


async def test_lease_picks_the_least_busy_server() -> None:
    pool = ServerPool([A, B])
    async with pool.lease() as first, pool.lease() as second:
        assert {first, second} == {A, B}
        async with pool.lease() as third:
            # both busy with one lease each: the tie rotates
            assert third in (A, B)
            async with pool.lease() as fourth:
                assert fourth != third  # the one with fewer leases


async def test_a_failed_server_cools_off_then_returns() -> None:
    clock = Clock()
    pool = ServerPool([A, B], cooloff=30, clock=clock)
    with pytest.raises(Unavailable):
        async with pool.lease() as url:
            assert url == A
            raise Unavailable("sd", "connection refused")
    assert pool.healthy() == [B]
    for _ in range(3):
        async with pool.lease() as url:
            assert url == B
    clock.now += 31
    assert pool.healthy() == [A, B]
    seen = set()
    for _ in range(2):
        async with pool.lease() as url:
            seen.add(url)
    assert seen == {A, B}


async def test_cooloff_doubles_on_repeated_failures_and_resets_on_success() -> None:
    clock = Clock()
    pool = ServerPool([A, B], cooloff=10, clock=clock)
    pool.mark_down(A)
    pool.mark_down(A)  # a second call failing in the same outage
    clock.now += 11
    assert pool.healthy() == [A, B]
    pool.mark_down(A)  # the probe after the cool-off failed
    clock.now += 15
    assert pool.healthy() == [B]  # second failure: 20 s
    clock.now += 6
    assert pool.healthy() == [A, B]
    pool.mark_up(A)
    pool.mark_down(A)
    clock.now += 11
    assert A in pool.healthy()  # back to 10 s after the success


async def test_other_errors_do_not_mark_a_server_down() -> None:
    pool = ServerPool([A, B])
    with pytest.raises(BadResponse):
        async with pool.lease():
            raise BadResponse("sd", "garbage")
    assert pool.healthy() == [A, B]


async def test_run_fails_over_to_the_next_server() -> None:
    pool = ServerPool([A, B])
    calls = []

    async def call(url: str) -> str:
        calls.append(url)
        if url == A:
            raise Unavailable("sd", "down")
        return f"done on {url}"

    assert await pool.run(call) == f"done on {B}"
    assert calls == [A, B]
    assert pool.healthy() == [B]


async def test_run_raises_the_last_error_when_every_server_failed() -> None:
    pool = ServerPool([A, B])
    calls = []

    async def call(url: str) -> str:
        calls.append(url)
        raise Unavailable("sd", f"{url} is down")

    with pytest.raises(Unavailable, match="is down"):
        await pool.run(call)
    assert sorted(calls) == [A, B]  # each tried once


async def test_run_passes_non_server_errors_through_without_trying_others() -> None:
    pool = ServerPool([A, B])
    calls = []

    async def call(url: str) -> str:
        calls.append(url)
        raise BadResponse("sd", "bad prompt")

    with pytest.raises(BadResponse):
        await pool.run(call)
    assert len(calls) == 1


async def test_when_all_are_down_the_soonest_back_is_probed() -> None:
    clock = Clock()
    pool = ServerPool([A, B], cooloff=30, clock=clock)
    pool.mark_down(A)
    clock.now += 31
    pool.mark_down(A)  # 60 s from now
    pool.mark_down(B)  # 30 s from now

    async def call(url: str) -> str:
        return url

    assert await pool.run(call) == B
    assert pool.healthy() == [B]


def test_a_pool_needs_a_server() -> None:
    with pytest.raises(ValueError):
        ServerPool([])
