"""`onboarding-parked`: list, show, replay or discard the messages parked beside a queue.

A consumer parks a message it cannot handle in ``<queue>.parked`` (see messaging.topology)
with its reason in the headers. This tool knows queues only by name; it has no business logic.

How it reads a parking queue without losing or reordering messages (no management API):
it takes every message the queue held when the command started, with basic.get in
manual-acknowledgement mode, and holds them unacknowledged on its own channel (nothing
consumes a parking queue, so nobody else sees them meanwhile). A message it replays is first
republished (publisher confirm, mandatory) and only then acknowledged; a message it discards
is acknowledged; every other message is given back with basic.nack(requeue=True), one by one
in the order taken. Taking all of them matters: depending on the version, a quorum queue puts
a returned message back at its head or at its tail, and with the whole queue taken both give
the original order (a message parked meanwhile may end up ahead of them). If the tool dies,
the broker returns what it held when the connection drops. Each look increases the messages'
x-delivery-count: RabbitMQ 4.0-4.2 counts a requeue towards a quorum queue's delivery limit
(20 by default), so the deployment sets a policy that lifts the limit on ``*.parked`` queues.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    HeadersType,
)
from aio_pika.exceptions import ChannelClosed, DeliveryError, PublishError

from onboarding_shared.messaging.consumer import (
    ATTEMPT_HEADER,
    HOLDS_HEADER,
    LAST_ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    PARKED_AT_HEADER,
    REASON_HEADER,
)
from onboarding_shared.messaging.queues import CONSUMER_QUEUES
from onboarding_shared.settings import broker_user

PARKED_SUFFIX = ".parked"
# The consumer queues of the four services, listed when no --queue is given; PARKED_QUEUES
# (comma-separated) replaces this list.
KNOWN_QUEUES = (
    *(queue.name for queue in CONSUMER_QUEUES),
    # Not part of the contract (Keycloak's own events), so declared by the auth-listener alone.
    "auth-listener.keycloak-logins",
)
REPLAY_COUNT_HEADER = "x-replay-count"
# Headers that describe the parking or the broker's dead-lettering, not the message.
STRIPPED_HEADERS = frozenset(
    {
        REASON_HEADER,
        PARKED_AT_HEADER,
        ORIGINAL_QUEUE_HEADER,
        LAST_ERROR_HEADER,
        ATTEMPT_HEADER,
        HOLDS_HEADER,
        "x-death",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-first-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-last-death-exchange",
        "x-delivery-count",
        "x-acquired-count",
    }
)
GET_TIMEOUT_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 10.0


class ToolError(Exception):
    """A problem to report on one line (exit status 1)."""


@dataclass(frozen=True)
class ParkedMessage:
    id: str
    reason: str
    parked_at: str
    original_queue: str
    looked_at: int
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: bytes

    @classmethod
    def from_delivery(cls, message: AbstractIncomingMessage) -> ParkedMessage:
        headers = dict(message.headers or {})
        return cls(
            id=message_id(message),
            reason=describe_reason(headers),
            parked_at=describe_parked_at(headers),
            original_queue=str(headers.get(ORIGINAL_QUEUE_HEADER) or ""),
            looked_at=_int(headers.get("x-delivery-count")),
            headers=headers,
            properties=_properties(message),
            body=message.body,
        )

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "parked_at": self.parked_at, "reason": self.reason}

    def details(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "original_queue": self.original_queue,
            "times_looked_at": self.looked_at,
            "properties": self.properties,
            "headers": self.headers,
            "body": _body_for_display(self.body),
        }


def message_id(message: AbstractIncomingMessage) -> str:
    """The AMQP message id; a message without one gets an id derived from its body."""
    if message.message_id:
        return message.message_id
    return "sha256:" + hashlib.sha256(message.body).hexdigest()[:16]


@dataclass(frozen=True)
class QueueNames:
    prefix: str

    def work_queue(self, name: str) -> str:
        name = name.removesuffix(PARKED_SUFFIX)
        return name if self.prefix and name.startswith(self.prefix) else self.prefix + name

    def parking_queue(self, name: str) -> str:
        return self.work_queue(name) + PARKED_SUFFIX


@dataclass
class Held:
    """Messages taken from a parking queue and not yet settled, in queue order."""

    messages: list[AbstractIncomingMessage]
    total: int
    settled: set[int] = field(default_factory=set)

    def parked(self) -> list[ParkedMessage]:
        return [ParkedMessage.from_delivery(message) for message in self.messages]

    def select(self, ids: Iterable[str] | None) -> list[AbstractIncomingMessage]:
        """All messages (``ids`` None) or those whose id is in ``ids``."""
        if ids is None:
            return list(self.messages)
        wanted = set(ids)
        return [message for message in self.messages if message_id(message) in wanted]

    async def ack(self, message: AbstractIncomingMessage) -> None:
        await message.ack()
        self.settled.add(id(message))

    async def give_back(self) -> None:
        """Requeue, in order, what was not settled. Should the channel be gone, the broker
        has already requeued them itself."""
        with contextlib.suppress(aio_pika.exceptions.AMQPError, ConnectionError):
            for message in self.messages:
                if id(message) not in self.settled:
                    await message.nack(requeue=True)


class ParkingLot:
    """Operations on parking queues over one AMQP connection."""

    def __init__(self, connection: AbstractConnection, names: QueueNames, user: str) -> None:
        self._connection = connection
        self.names = names
        # Replays are published as this user. Run as the consuming service's own broker user,
        # so that the service still believes the original sender its consumer vouched for
        # (messaging/trust.py); replayed as anyone else they are parked again, untrusted.
        self._user = user

    async def count(self, queue: str) -> int | None:
        """Messages in the queue's parking queue; None when it is not declared."""
        channel = await self._connection.channel()
        try:
            declared = await channel.declare_queue(self.names.parking_queue(queue), passive=True)
        except ChannelClosed:
            return None
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return declared.declaration_result.message_count or 0

    @contextlib.asynccontextmanager
    async def hold(self, queue: str) -> AsyncIterator[Held]:
        """Take every message of the parking queue (as many as it held when called); give
        back, in order, all that were not acknowledged."""
        name = self.names.parking_queue(queue)
        channel = await self._connection.channel()
        try:
            try:
                parking = await channel.declare_queue(name, passive=True)
            except ChannelClosed:
                raise ToolError(f"queue {name} is not declared") from None
            total = parking.declaration_result.message_count or 0
            messages: list[AbstractIncomingMessage] = []
            while len(messages) < total:
                message = await parking.get(no_ack=False, fail=False, timeout=GET_TIMEOUT_SECONDS)
                if message is None:
                    break
                messages.append(message)
            held = Held(messages=messages, total=total)
            try:
                yield held
            finally:
                await held.give_back()
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def replay(self, held: Held, messages: Sequence[AbstractIncomingMessage]) -> int:
        """Republish each message to its original queue, then acknowledge it."""
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        replayed = 0
        try:
            for message in messages:
                await _republish(channel, message, _original_queue(message), self._user)
                await held.ack(message)
                replayed += 1
        finally:
            with contextlib.suppress(Exception):
                await channel.close()
        return replayed


def _original_queue(message: AbstractIncomingMessage) -> str:
    original = (message.headers or {}).get(ORIGINAL_QUEUE_HEADER)
    if isinstance(original, str) and original:
        return original
    # Dead-lettered by the broker (delivery limit): the routing key is the work queue's name.
    return message.routing_key or ""


async def _republish(
    channel: AbstractChannel, message: AbstractIncomingMessage, queue: str, user_id: str
) -> None:
    if not queue:
        raise ToolError(f"message {message_id(message)} names no original queue; not replayed")
    headers: HeadersType = {
        key: value for key, value in (message.headers or {}).items() if key not in STRIPPED_HEADERS
    }
    headers[REPLAY_COUNT_HEADER] = _int(headers.get(REPLAY_COUNT_HEADER)) + 1
    copy = aio_pika.Message(
        message.body,
        headers=headers,
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
        user_id=user_id,
    )
    try:
        await channel.default_exchange.publish(
            copy, routing_key=queue, mandatory=True, timeout=PUBLISH_TIMEOUT_SECONDS
        )
    except (DeliveryError, PublishError, TimeoutError) as error:
        raise ToolError(
            f"could not replay {message_id(message)} to {queue} ({type(error).__name__}); "
            "it stays parked"
        ) from None


# --- command line -------------------------------------------------------------------------


def ask(question: str) -> bool:
    """Ask on the terminal; without one, refuse (pass --yes in scripts)."""
    if not sys.stdin.isatty():
        raise ToolError("no terminal to confirm on: pass --yes to discard without asking")
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--amqp-url",
        default=os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/"),
        help="broker URL (default: $AMQP_URL, else amqp://guest:guest@localhost:5672/)",
    )
    common.add_argument(
        "--queue-prefix",
        default=os.environ.get("QUEUE_PREFIX", ""),
        help="prefix of the queue names, as the services use it (default: $QUEUE_PREFIX)",
    )
    parser = argparse.ArgumentParser(
        prog="onboarding-parked",
        description="Inspect, replay or discard messages parked beside a consumer queue. "
        "Queues are named as the services name them (e.g. mailer.invitations); "
        "the tool reads <queue>.parked.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "list",
        parents=[common],
        help="count and list parked messages, per queue",
        description="Per queue: the number of parked messages and, for the first --limit of "
        "them, id, parked-at time and reason.",
    )
    listing.add_argument(
        "--queue",
        action="append",
        metavar="Q",
        help="a queue to look at (repeatable; default: $PARKED_QUEUES, comma-separated, "
        f"else {', '.join(KNOWN_QUEUES)})",
    )
    listing.add_argument("--limit", type=_positive, default=100, help="messages shown per queue")
    listing.add_argument("--json", action="store_true", help="print JSON")

    show = commands.add_parser(
        "show",
        parents=[common],
        help="print one parked message with its headers and body",
        description="Print every parked message with this id: properties, headers, body.",
    )
    show.add_argument("id", metavar="ID", help="the message id, as `list` prints it")
    show.add_argument("--queue", required=True, metavar="Q", help="the consumer queue")
    show.add_argument("--json", action="store_true", help="print JSON")

    for name, verb, extra in (
        ("replay", "republish to the original queue (default exchange) and remove", ""),
        ("discard", "delete, after a confirmation", " Asks for confirmation unless --yes."),
    ):
        command = commands.add_parser(
            name,
            parents=[common],
            help=f"{verb}: all parked messages or some by id",
            description=f"{verb.capitalize()}: the parked messages of one queue.{extra}",
        )
        command.add_argument("--queue", required=True, metavar="Q", help="the consumer queue")
        which = command.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="every message parked now")
        which.add_argument(
            "--id", nargs="+", action="extend", metavar="ID", dest="ids", help="message ids"
        )
        if name == "discard":
            command.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    return parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


async def execute(arguments: argparse.Namespace, out: TextIO) -> int:
    names = QueueNames(arguments.queue_prefix)
    try:
        connection = await aio_pika.connect(arguments.amqp_url, timeout=10)
    except (OSError, aio_pika.exceptions.AMQPError) as error:
        raise ToolError(f"cannot reach RabbitMQ ({type(error).__name__})") from None
    async with connection:
        lot = ParkingLot(connection, names, broker_user(arguments.amqp_url))
        return await COMMANDS[arguments.command](lot, arguments, out)


async def list_command(lot: ParkingLot, arguments: argparse.Namespace, out: TextIO) -> int:
    queues = arguments.queue or default_queues()
    report: list[dict[str, Any]] = []
    for queue in queues:
        name = lot.names.parking_queue(queue)
        if await lot.count(queue) is None:
            report.append({"queue": name, "declared": False, "count": 0, "messages": []})
            continue
        async with lot.hold(queue) as held:
            messages = [message.summary() for message in held.parked()[: arguments.limit]]
            report.append(
                {"queue": name, "declared": True, "count": held.total, "messages": messages}
            )
    if arguments.json:
        _print_json(report, out)
        return 0
    for entry in report:
        if not entry["declared"]:
            print(f"{entry['queue']}: not declared", file=out)
            continue
        print(f"{entry['queue']}: {entry['count']} parked", file=out)
        for message in entry["messages"]:
            print(f"  {message['id']}  {message['parked_at']}  {message['reason']}", file=out)
        if entry["count"] > len(entry["messages"]):
            print(f"  ... {entry['count'] - len(entry['messages'])} more", file=out)
    return 0


async def show_command(lot: ParkingLot, arguments: argparse.Namespace, out: TextIO) -> int:
    async with lot.hold(arguments.queue) as held:
        found = [ParkedMessage.from_delivery(m) for m in held.select([arguments.id])]
    if not found:
        raise ToolError(f"no message {arguments.id} in {lot.names.parking_queue(arguments.queue)}")
    if arguments.json:
        _print_json([message.details() for message in found], out)
        return 0
    for message in found:
        details = message.details()
        for key in ("id", "parked_at", "reason", "original_queue", "times_looked_at"):
            print(f"{key}: {details[key]}", file=out)
        print("properties:", file=out)
        for key, value in details["properties"].items():
            print(f"  {key}: {_text(value)}", file=out)
        print("headers:", file=out)
        for key, value in details["headers"].items():
            print(f"  {key}: {_text(value)}", file=out)
        print("body:", file=out)
        print(details["body"], file=out)
    return 0


async def replay_command(lot: ParkingLot, arguments: argparse.Namespace, out: TextIO) -> int:
    async with lot.hold(arguments.queue) as held:
        chosen = held.select(None if arguments.all else arguments.ids)
        missing = _missing_ids(arguments, chosen)
        replayed = await lot.replay(held, chosen)
    print(f"replayed {replayed} message(s) to {lot.names.work_queue(arguments.queue)}", file=out)
    return _report_missing(missing)


async def discard_command(lot: ParkingLot, arguments: argparse.Namespace, out: TextIO) -> int:
    name = lot.names.parking_queue(arguments.queue)
    async with lot.hold(arguments.queue) as held:
        chosen = held.select(None if arguments.all else arguments.ids)
        missing = _missing_ids(arguments, chosen)
        if chosen and not arguments.yes:
            ids = ", ".join(sorted({message_id(message) for message in chosen}))
            if not ask(f"Discard {len(chosen)} message(s) from {name} ({ids})?"):
                print("nothing discarded", file=out)
                return 1
        for message in chosen:
            await held.ack(message)
    print(f"discarded {len(chosen)} message(s) from {name}", file=out)
    return _report_missing(missing)


Command = Callable[[ParkingLot, argparse.Namespace, TextIO], Awaitable[int]]
COMMANDS: dict[str, Command] = {
    "list": list_command,
    "show": show_command,
    "replay": replay_command,
    "discard": discard_command,
}


def _missing_ids(
    arguments: argparse.Namespace, chosen: Sequence[AbstractIncomingMessage]
) -> list[str]:
    if arguments.all:
        return []
    found = {message_id(message) for message in chosen}
    return [wanted for wanted in arguments.ids if wanted not in found]


def _report_missing(missing: list[str]) -> int:
    if missing:
        print(f"not found: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def default_queues() -> list[str]:
    configured = os.environ.get("PARKED_QUEUES", "")
    names = [name.strip() for name in configured.split(",") if name.strip()]
    return names or list(KNOWN_QUEUES)


def run(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return asyncio.run(execute(arguments, out or sys.stdout))
    except ToolError as error:
        print(f"onboarding-parked: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; messages not yet handled stay parked", file=sys.stderr)
        return 130


def main() -> None:
    raise SystemExit(run())


# --- formatting ---------------------------------------------------------------------------


def describe_reason(headers: dict[str, Any]) -> str:
    if reason := headers.get(REASON_HEADER):
        return str(reason)
    if broker_reason := headers.get("x-first-death-reason"):
        return f"dead-lettered by the broker ({broker_reason})"
    return "unknown"


def describe_parked_at(headers: dict[str, Any]) -> str:
    if parked_at := headers.get(PARKED_AT_HEADER):
        return str(parked_at)
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        time = deaths[0].get("time")
        if isinstance(time, datetime):
            return time.isoformat()
    return "unknown"


def _properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    candidates = {
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "type": message.type,
        "app_id": message.app_id,
        "content_type": message.content_type,
        "content_encoding": message.content_encoding,
        "timestamp": message.timestamp,
        "routing_key": message.routing_key,
        "exchange": message.exchange,
    }
    return {key: value for key, value in candidates.items() if value not in (None, "")}


def _body_for_display(body: bytes) -> str:
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", errors="backslashreplace")


def _text(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _print_json(value: Any, out: TextIO) -> None:
    print(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2), file=out)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    if isinstance(value, Decimal):
        return str(value)
    return repr(value)


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return 0


if __name__ == "__main__":
    main()
