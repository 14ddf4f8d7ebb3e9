"""The fair, bounded queue in front of the LLM (unit tests on a real event loop and real threads)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from branchwise.server.errors import Busy
from branchwise.server.scheduler import FairScheduler, JobRunner


def test_waiters_are_served_round_robin_across_indexes_and_fifo_within_one() -> None:
    async def scenario() -> list[str]:
        sched = FairScheduler(concurrency=1, max_waiting=10, max_waiting_per_key=10)
        order: list[str] = []
        await sched.acquire("a")  # the running job

        async def job(key: str, label: str) -> None:
            await sched.acquire(key)
            order.append(label)
            sched.release()

        # a burst on index a, then one request each on b and c
        tasks = [asyncio.create_task(job(k, f"{k}{i}")) for k, i in
                 [("a", 1), ("a", 2), ("a", 3), ("b", 1), ("c", 1), ("b", 2)]]
        await asyncio.sleep(0)
        assert sched.waiting == 6
        sched.release()
        await asyncio.gather(*tasks)
        assert sched.running == 0 and sched.waiting == 0
        return order

    assert asyncio.run(scenario()) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_a_full_queue_refuses_at_once_overall_and_per_index() -> None:
    async def scenario() -> None:
        sched = FairScheduler(concurrency=1, max_waiting=3, max_waiting_per_key=2)
        await sched.acquire("a")
        waiters = [asyncio.create_task(sched.acquire(k)) for k in ("a", "a", "b")]
        await asyncio.sleep(0)
        with pytest.raises(Busy, match="3 request"):
            await sched.acquire("c")  # overall bound
        waiters[2].cancel()
        await asyncio.sleep(0)
        with pytest.raises(Busy):
            await sched.acquire("a")  # a's share is full, although the queue has room
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert sched.waiting == 0 and sched.running == 1

    asyncio.run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_never_holds_a_slot() -> None:
    async def scenario() -> None:
        sched = FairScheduler(concurrency=1)
        await sched.acquire("a")
        gone = asyncio.create_task(sched.acquire("a"))
        stays = asyncio.create_task(sched.acquire("b"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        sched.release()
        await stays
        assert sched.running == 1 and sched.waiting == 0
        sched.release()
        assert sched.running == 0

    asyncio.run(scenario())


def test_the_slot_is_held_until_the_worker_thread_finishes_even_if_nobody_waits_for_it() -> None:
    async def scenario() -> None:
        runner = JobRunner(FairScheduler(concurrency=1))
        release = threading.Event()
        started = await runner.start("a", lambda: release.wait(30))
        # the request that started it goes away: the job still runs and still holds the slot
        waiting = asyncio.create_task(runner.run("b", lambda: "second"))
        await asyncio.sleep(0.05)
        assert runner.scheduler.stats()["running"] == 1 and runner.scheduler.waiting == 1
        release.set()
        assert await waiting == "second"
        assert started.result() is True
        await asyncio.sleep(0.01)
        assert runner.scheduler.running == 0
        runner.close()

    asyncio.run(scenario())
