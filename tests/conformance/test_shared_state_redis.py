"""The cross-request state conformance suite on Redis, and what only the Redis state does.

Needs Redis at 127.0.0.1:6379 (STAGEWISE_TEST_REDIS_URL overrides it; .ci/run starts it): if
it is not reachable these tests fail, never skip. Every test has its own random key prefix,
and its keys are deleted afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from stagewise.errors import Unavailable
from stagewise.storage.shared import RedisState, redact
from stagewise.testing.shared_state import (
    SharedStateConformance,
    Worker,
    WorkerFactory,
    make_record,
)

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("STAGEWISE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
OpenState = Callable[..., RedisState]


@pytest.fixture(scope="module")
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    problem: str | None = None
    try:
        client.ping()
    except redis.RedisError as exc:
        problem = str(exc)
    finally:
        client.close()
    if problem is not None:  # failed outside the except block: no chained traceback
        pytest.fail(
            f"Redis is not reachable at {redact(REDIS_URL)}: {problem}\nThe redis-marked tests "
            "need a Redis server at 127.0.0.1:6379 (.ci/run starts one); they never skip "
            "(deselect them with -m 'not redis').",
            pytrace=False,
        )
    return REDIS_URL


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(raw: redis.Redis) -> Iterator[str]:
    prefix = f"stagewise-test:{secrets.token_hex(6)}:"
    yield prefix
    keys = list(raw.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        raw.delete(*keys)


@pytest.fixture
def open_state(redis_url: str, prefix: str) -> Iterator[OpenState]:
    states: list[RedisState] = []

    def open_one(**kw: Any) -> RedisState:
        states.append(RedisState(redis_url, prefix=prefix, **kw))
        return states[-1]

    yield open_one
    for state in states:
        state.close()


class TestRedisSharedState(SharedStateConformance):
    shared = True

    @pytest.fixture
    def make_worker(self, open_state: OpenState) -> WorkerFactory:
        def make(*, live_ttl_s: float = 3600.0) -> Worker:
            s = open_state(live_ttl_s=live_ttl_s)
            return Worker(s.live, s.results, s.secret, s.rate, s.slots)

        return make


def test_redact_strips_credentials() -> None:
    assert redact("redis://user:pw@cache.internal:6380/2?password=x") == (
        "redis://cache.internal:6380/2"
    )
    assert redact("rediss://:pw@h/0") == "rediss://h/0"
    assert redact("unix:///run/redis.sock?db=1&password=x") == "unix:///run/redis.sock"


def test_unreachable_redis_is_unavailable() -> None:
    # Port 1 on loopback refuses at once.
    state = RedisState("redis://user:hunter2@127.0.0.1:1/0?password=hunter3")
    calls: list[Callable[[], object]] = [
        state.ping,
        lambda: state.live.put(make_record(), "owner_a"),
        lambda: state.live.get("exec_a"),
        lambda: state.live.discard("exec_a"),
        lambda: state.live.heartbeat("owner_a", 5.0),
        lambda: state.live.orphans(["exec_a"]),
        lambda: state.results.get("key"),
        lambda: state.results.put("key", "exec_a"),
        lambda: state.rate(1.0, 1).check("key_a"),
        lambda: state.slots(1).acquire("key_a"),
        lambda: state.secret.get_or_create("cursor", lambda: "s"),
    ]
    for call in calls:
        with pytest.raises(Unavailable) as caught:
            call()
        exc = caught.value
        assert exc.status == 503
        assert "redis://127.0.0.1:1/0" in exc.message
        assert "hunter" not in exc.message and "user" not in exc.message
        assert exc.details == {"retry_after_seconds": 1}
    state.close()


def test_a_release_redis_cannot_take_is_logged_not_raised(
    open_state: OpenState, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = open_state()
    release = state.slots(1).acquire("key_a")

    def down(*_: object) -> None:
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(state.client, "zrem", down)
    release()  # the run's answer stands; the lease frees the slot later


def test_every_key_but_the_secret_expires(open_state: OpenState, raw: redis.Redis) -> None:
    state = open_state(live_ttl_s=600, result_ttl_s=300)
    state.live.heartbeat("owner_a", 30)
    state.live.put(make_record(execution_id="exec_a"), "owner_a")
    state.results.put("key", "exec_a")
    state.rate(10.0, 5).check("key_a")
    state.slots(2, lease_s=90).acquire("key_a")
    state.secret.get_or_create("cursor", lambda: "s")
    p = state.prefix
    ttls = {key.removeprefix(p): raw.pttl(key) for key in raw.scan_iter(match=f"{p}*")}
    assert set(ttls) == {
        "alive:owner_a",
        "live:exec_a",
        "result:key",
        "rate:key_a",
        "slots:key_a",
        "secret:cursor",
    }
    assert 25_000 < ttls["alive:owner_a"] <= 30_000
    assert 590_000 < ttls["live:exec_a"] <= 600_000
    assert 290_000 < ttls["result:key"] <= 300_000
    assert 0 < ttls["rate:key_a"] <= 1_500  # a full refill (0.5 s) and a margin
    assert 80_000 < ttls["slots:key_a"] <= 90_000
    assert ttls["secret:cursor"] == -1


def test_prefixes_keep_deployments_apart(open_state: OpenState, redis_url: str) -> None:
    mine = open_state()
    theirs = RedisState(redis_url, prefix=f"stagewise-test:{secrets.token_hex(6)}:")
    try:
        mine.results.put("key", "exec_a")
        assert theirs.results.get("key") is None
    finally:
        theirs.close()


def test_scripts_are_loaded_again_after_redis_lost_them(
    open_state: OpenState, raw: redis.Redis
) -> None:
    state = open_state()
    state.rate(1.0, 2).check("key_a")
    state.slots(1).acquire("key_a")
    raw.script_flush()  # as after a restart
    state.rate(1.0, 2).check("key_a")
    state.slots(2).acquire("key_a")
