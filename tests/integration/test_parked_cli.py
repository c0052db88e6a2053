"""`onboarding-parked` against the real broker: list, show, replay and discard parked messages
without losing or reordering the others."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from onboarding_shared.messaging.topology import ConsumerQueue, declare_consumer_queue
from onboarding_shared.tools import parked
from tests.support.broker import Namespace, drain

pytestmark = pytest.mark.integration

# A name Namespace.delete() knows, so the queues are removed after each test.
QUEUE = "mailer.invitations"
CONSOLE_SCRIPT = Path(sys.executable).parent / "onboarding-parked"


@pytest.fixture
async def work_queue(amqp_url: str, namespace: Namespace) -> ConsumerQueue:
    queue = ConsumerQueue(
        name=namespace.queue(QUEUE),
        bindings=(),
        events_exchange=namespace.exchange,
    )
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        await declare_consumer_queue(await connection.channel(), queue)
    return queue


async def park(
    amqp_url: str, queue: ConsumerQueue, message_id: str, reason: str = "", **headers: Any
) -> None:
    """Dead-letter a message as the reliable consumer does: to the DLX, keyed by the queue."""
    if reason:
        headers |= {
            "x-parked-reason": reason,
            "x-parked-at": f"2026-01-01T00:00:0{message_id[-1]}+00:00",
            "x-original-queue": queue.name,
        }
    headers.setdefault("x-original-exchange", queue.events_exchange)
    headers.setdefault("x-original-routing-key", "invitation.requested.v1")
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(queue.dead_letter_exchange, ensure=False)
        await exchange.publish(
            aio_pika.Message(
                json.dumps({"event_id": message_id}).encode(),
                message_id=message_id,
                correlation_id=f"corr-{message_id}",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                headers=headers,
            ),
            routing_key=queue.name,
            mandatory=True,
            timeout=10,
        )


async def cli(amqp_url: str, namespace: Namespace, *arguments: str) -> tuple[int, str]:
    """Run the tool in-process (its own event loop, in a thread); exit status and stdout."""
    out = io.StringIO()
    argv = [*arguments, "--amqp-url", amqp_url, "--queue-prefix", namespace.queue_prefix]
    status = await asyncio.to_thread(parked.run, argv, out=out)
    return status, out.getvalue()


async def ids_in(amqp_url: str, queue: str) -> list[str]:
    return [message.message_id or "" for message in await drain(amqp_url, queue)]


async def park_three(amqp_url: str, queue: ConsumerQueue) -> None:
    for index, reason in enumerate(("bad json", "no handler", "failed after 4 attempts")):
        await park(amqp_url, queue, f"m{index + 1}", reason, **{"x-attempt": 4})


async def test_list_counts_and_describes_parked_messages_without_consuming_them(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    for _ in range(2):
        status, output = await cli(amqp_url, namespace, "list", "--queue", QUEUE)
        assert status == 0
        lines = output.splitlines()
        assert lines[0] == f"{work_queue.parking_queue}: 3 parked"
        assert [line.split()[0] for line in lines[1:]] == ["m1", "m2", "m3"]
        assert lines[1].split()[1] == "2026-01-01T00:00:01+00:00"
        assert lines[3].endswith("failed after 4 attempts")

    assert await ids_in(amqp_url, work_queue.parking_queue) == ["m1", "m2", "m3"]


async def test_list_limits_the_listing_prints_json_and_names_undeclared_queues(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    status, output = await cli(amqp_url, namespace, "list", "--queue", QUEUE, "--limit", "2")
    assert status == 0
    assert output.splitlines()[-1] == "  ... 1 more"

    status, output = await cli(
        amqp_url, namespace, "list", "--queue", QUEUE, "--queue", "nobody.here", "--json"
    )
    assert status == 0
    report = json.loads(output)
    assert report[0]["count"] == 3
    assert [m["id"] for m in report[0]["messages"]] == ["m1", "m2", "m3"]
    assert report[0]["messages"][1]["reason"] == "no handler"
    assert report[1] == {
        "queue": namespace.queue("nobody.here.parked"),
        "declared": False,
        "count": 0,
        "messages": [],
    }
    assert await ids_in(amqp_url, work_queue.parking_queue) == ["m1", "m2", "m3"]


async def test_show_prints_one_message_with_headers_and_body(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    status, output = await cli(amqp_url, namespace, "show", "m2", "--queue", QUEUE)
    assert status == 0
    assert "reason: no handler" in output
    assert '  correlation_id: "corr-m2"' in output
    assert '  x-original-routing-key: "invitation.requested.v1"' in output
    assert '"event_id": "m2"' in output

    status, output = await cli(amqp_url, namespace, "show", "m2", "--queue", QUEUE, "--json")
    assert json.loads(output)[0]["headers"]["x-attempt"] == 4

    status, _ = await cli(amqp_url, namespace, "show", "nope", "--queue", QUEUE)
    assert status == 1
    assert await ids_in(amqp_url, work_queue.parking_queue) == ["m1", "m2", "m3"]


async def test_replay_by_id_republishes_to_the_work_queue_without_the_parking_headers(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    status, output = await cli(amqp_url, namespace, "replay", "--queue", QUEUE, "--id", "m2")
    assert status == 0
    assert output.strip() == f"replayed 1 message(s) to {work_queue.name}"

    replayed = await drain(amqp_url, work_queue.name)
    assert [m.message_id for m in replayed] == ["m2"]
    message = replayed[0]
    assert json.loads(message.body) == {"event_id": "m2"}
    assert message.correlation_id == "corr-m2"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    headers = message.headers or {}
    for gone in ("x-parked-reason", "x-parked-at", "x-original-queue", "x-attempt"):
        assert gone not in headers
    assert headers["x-original-routing-key"] == "invitation.requested.v1"
    assert headers["x-replay-count"] == 1
    assert await ids_in(amqp_url, work_queue.parking_queue) == ["m1", "m3"]


async def test_replay_all_and_unknown_ids(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    status, _ = await cli(amqp_url, namespace, "replay", "--queue", QUEUE, "--id", "m3", "zz")
    assert status == 1  # zz is not there; m3 is replayed all the same
    status, output = await cli(amqp_url, namespace, "replay", "--queue", QUEUE, "--all")
    assert status == 0
    assert output.startswith("replayed 2 message(s)")

    assert await ids_in(amqp_url, work_queue.name) == ["m3", "m1", "m2"]
    assert await ids_in(amqp_url, work_queue.parking_queue) == []


async def test_a_message_dead_lettered_by_the_broker_is_described_and_replayed(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park(amqp_url, work_queue, "poison", **{"x-first-death-reason": "delivery_limit"})

    status, output = await cli(amqp_url, namespace, "list", "--queue", QUEUE)
    assert "poison  unknown  dead-lettered by the broker (delivery_limit)" in output
    status, _ = await cli(amqp_url, namespace, "replay", "--queue", QUEUE, "--all")
    assert status == 0
    replayed = await drain(amqp_url, work_queue.name)
    assert [m.message_id for m in replayed] == ["poison"]
    assert "x-first-death-reason" not in (replayed[0].headers or {})


async def test_discard_asks_first_and_removes_only_the_chosen_messages(
    amqp_url: str,
    namespace: Namespace,
    work_queue: ConsumerQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await park_three(amqp_url, work_queue)
    questions: list[str] = []

    def answer(reply: bool) -> None:
        def ask(question: str) -> bool:
            questions.append(question)
            return reply

        monkeypatch.setattr(parked, "ask", ask)

    answer(False)
    status, output = await cli(amqp_url, namespace, "discard", "--queue", QUEUE, "--id", "m1")
    assert (status, output.strip()) == (1, "nothing discarded")
    assert questions == [f"Discard 1 message(s) from {work_queue.parking_queue} (m1)?"]

    answer(True)
    status, output = await cli(amqp_url, namespace, "discard", "--queue", QUEUE, "--id", "m1")
    assert status == 0
    assert output.strip() == f"discarded 1 message(s) from {work_queue.parking_queue}"
    assert await ids_in(amqp_url, work_queue.parking_queue) == ["m2", "m3"]


async def test_discard_all_with_yes_and_refusal_without_a_terminal(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)

    refused = await run_console_script(amqp_url, namespace, ["discard", "--queue", QUEUE, "--all"])
    assert refused.returncode == 1
    assert "pass --yes" in refused.stderr

    status, output = await cli(amqp_url, namespace, "discard", "--queue", QUEUE, "--all", "--yes")
    assert status == 0
    assert output.strip() == f"discarded 3 message(s) from {work_queue.parking_queue}"
    assert await ids_in(amqp_url, work_queue.parking_queue) == []
    assert await ids_in(amqp_url, work_queue.name) == []


async def test_the_console_script_is_installed_with_help_and_reads_the_environment(
    amqp_url: str, namespace: Namespace, work_queue: ConsumerQueue
) -> None:
    await park_three(amqp_url, work_queue)
    for command in ([], ["list"], ["show"], ["replay"], ["discard"]):
        shown = await run_console_script(amqp_url, namespace, [*command, "--help"])
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("usage: onboarding-parked")

    environment = {"AMQP_URL": amqp_url, "QUEUE_PREFIX": namespace.queue_prefix}
    listed = await run_console_script(
        amqp_url, namespace, ["list"], environment=environment, flags=False
    )
    assert listed.returncode == 0, listed.stderr
    assert f"{work_queue.parking_queue}: 3 parked" in listed.stdout
    assert namespace.queue("invitations.email-outcomes.parked: not declared") in listed.stdout


async def run_console_script(
    amqp_url: str,
    namespace: Namespace,
    arguments: Sequence[str],
    *,
    environment: dict[str, str] | None = None,
    flags: bool = True,
) -> subprocess.CompletedProcess[str]:
    extra = ["--amqp-url", amqp_url, "--queue-prefix", namespace.queue_prefix] if flags else []
    return await asyncio.to_thread(
        subprocess.run,
        [str(CONSOLE_SCRIPT), *arguments, *extra],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PARKED_QUEUES": "", **(environment or {})},
        timeout=60,
        check=False,
    )
