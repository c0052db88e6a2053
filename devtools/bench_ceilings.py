"""The ceilings: what the libraries do on their own against the same sink and broker, in the
same run, so each figure of the system is read as a ratio to the best it could do here."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage

import aio_pika
import aiosmtplib
from aio_pika.abc import AbstractIncomingMessage

SMTP_POOLED_MAILS = 2000
SMTP_POOLED_CONNECTIONS = 8
SMTP_SERIAL_MAILS = 500
BROKER_MESSAGES = 20_000
BROKER_SERIAL_MESSAGES = 3000
IN_FLIGHT = 256
# Given to aiosmtplib so that it does not resolve socket.getfqdn() for every connection: that
# would measure the resolver, not SMTP.
LOCAL_HOSTNAME = "bench.localhost"


@dataclass(frozen=True)
class Ceilings:
    smtp_pooled: float  # mails/s, 8 reused connections
    smtp_serial: float  # mails/s, one new connection per mail, one at a time
    publish_pipelined: float  # messages/s, confirms with 256 in flight, quorum queue
    publish_serial: float  # messages/s, each confirm awaited before the next publish
    consume: float  # messages/s, consume + ack, prefetch 256
    mail_bytes: int

    @property
    def serial_seconds_for_500(self) -> float:
        return 500 / self.smtp_serial


def sample_mail(size: int) -> EmailMessage:
    """A mail of about `size` bytes, text and HTML like an invitation."""
    message = EmailMessage()
    message["From"] = "Onboarding Dev <no-reply@localhost>"
    message["To"] = "someone@example.com"
    message["Subject"] = "Welcome to Onboarding Dev"
    message["Message-ID"] = f"<{uuid.uuid4()}@bench>"
    line = "Join Chat: http://localhost:8001/join/" + "x" * 43 + "\n"
    text = line * max(1, size // 2 // len(line))
    message.set_content(text)
    message.add_alternative(f"<html><body><pre>{text}</pre></body></html>", subtype="html")
    return message


async def smtp_pooled(port: int, message: EmailMessage) -> float:
    remaining = SMTP_POOLED_MAILS

    async def connection() -> None:
        nonlocal remaining
        client = aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, local_hostname=LOCAL_HOSTNAME, start_tls=False
        )
        await client.connect()
        while remaining > 0:
            remaining -= 1
            await client.send_message(message)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(SMTP_POOLED_CONNECTIONS)))
    return SMTP_POOLED_MAILS / (time.perf_counter() - started)


async def smtp_serial(port: int, message: EmailMessage) -> float:
    started = time.perf_counter()
    for _ in range(SMTP_SERIAL_MAILS):
        await aiosmtplib.send(
            message,
            hostname="127.0.0.1",
            port=port,
            local_hostname=LOCAL_HOSTNAME,
            start_tls=False,
        )
    return SMTP_SERIAL_MAILS / (time.perf_counter() - started)


def login_body() -> bytes:
    """A message the size of a `user.logged_in.v1` envelope."""
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "UserLoggedIn",
            "event_version": 1,
            "occurred_at": now,
            "producer": "bench",
            "correlation_id": str(uuid.uuid4()),
            "data": {"email": "ada@example.com", "logged_in_at": now, "source": "bench"},
        }
    ).encode()


async def _ceiling_queue(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractExchange:
    """A topic exchange and a quorum queue behind it, as the services declare theirs."""
    exchange = await channel.declare_exchange("bench.ceiling", "topic", durable=True)
    queue = await channel.declare_queue(
        "bench.ceiling", durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.bind(exchange, "#")
    return exchange


async def publish_confirms(amqp_url: str, messages: int, in_flight: int) -> float:
    """Persistent, mandatory publishes with confirms, `in_flight` awaiting at any time."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await _ceiling_queue(channel)
        body = login_body()
        remaining = messages

        async def publisher() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await exchange.publish(message, routing_key="user.logged_in.v1", mandatory=True)

        started = time.perf_counter()
        await asyncio.gather(*(publisher() for _ in range(in_flight)))
        return messages / (time.perf_counter() - started)


async def consume_ack(amqp_url: str, messages: int) -> float:
    """Drain `messages` already waiting in the ceiling queue, acking each one."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=IN_FLIGHT)
        queue = await channel.get_queue("bench.ceiling")
        done = asyncio.Event()
        acked = 0

        async def on_message(message: AbstractIncomingMessage) -> None:
            nonlocal acked
            await message.ack()
            acked += 1
            if acked >= messages:
                done.set()

        started = time.perf_counter()
        tag = await queue.consume(on_message)
        await done.wait()
        elapsed = time.perf_counter() - started
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
        return messages / elapsed


async def measure(amqp_url: str, smtp_port: int, mail_bytes: int) -> Ceilings:
    message = sample_mail(mail_bytes)
    pooled = await smtp_pooled(smtp_port, message)
    serial = await smtp_serial(smtp_port, message)
    one_at_a_time = await publish_confirms(amqp_url, BROKER_SERIAL_MESSAGES, 1)
    pipelined = await publish_confirms(amqp_url, BROKER_MESSAGES, IN_FLIGHT)
    consume = await consume_ack(amqp_url, BROKER_MESSAGES + BROKER_SERIAL_MESSAGES)
    return Ceilings(pooled, serial, pipelined, one_at_a_time, consume, len(bytes(message)))
