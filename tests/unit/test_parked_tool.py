"""onboarding-parked without a broker: queue naming, arguments, descriptions, and the one-line
error when the broker cannot be reached."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from onboarding_shared.tools import parked


def test_queue_names_take_the_prefix_once_and_accept_the_parking_name() -> None:
    names = parked.QueueNames("t1.")
    assert names.work_queue("mailer.invitations") == "t1.mailer.invitations"
    assert names.work_queue("t1.mailer.invitations") == "t1.mailer.invitations"
    assert names.parking_queue("mailer.invitations.parked") == "t1.mailer.invitations.parked"
    assert parked.QueueNames("").parking_queue("mailer.invitations") == "mailer.invitations.parked"


def test_replay_and_discard_need_all_or_ids(capsys: pytest.CaptureFixture[str]) -> None:
    parser = parked.build_parser()
    for command in ("replay", "discard"):
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--queue", "q"])
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--queue", "q", "--all", "--id", "a"])
    arguments = parser.parse_args(["replay", "--queue", "q", "--id", "a", "b", "--id", "c"])
    assert arguments.ids == ["a", "b", "c"]
    assert "one of the arguments --all --id is required" in capsys.readouterr().err


def test_the_environment_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMQP_URL", "amqp://u:p@broker:5672/")
    monkeypatch.setenv("QUEUE_PREFIX", "staging.")
    arguments = parked.build_parser().parse_args(["list"])
    assert (arguments.amqp_url, arguments.queue_prefix) == ("amqp://u:p@broker:5672/", "staging.")
    monkeypatch.setenv("PARKED_QUEUES", " a.b , c.d,")
    assert parked.default_queues() == ["a.b", "c.d"]
    monkeypatch.delenv("PARKED_QUEUES")
    assert parked.default_queues() == list(parked.KNOWN_QUEUES)


def test_reason_and_time_come_from_our_headers_or_the_brokers() -> None:
    ours = {"x-parked-reason": "bad json", "x-parked-at": "2026-01-01T00:00:00+00:00"}
    assert parked.describe_reason(ours) == "bad json"
    assert parked.describe_parked_at(ours) == "2026-01-01T00:00:00+00:00"
    died = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    brokers = {"x-first-death-reason": "delivery_limit", "x-death": [{"time": died}]}
    assert parked.describe_reason(brokers) == "dead-lettered by the broker (delivery_limit)"
    assert parked.describe_parked_at(brokers) == died.isoformat()
    assert (parked.describe_reason({}), parked.describe_parked_at({})) == ("unknown", "unknown")


def test_an_unreachable_broker_is_one_line_and_status_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = parked.run(
        ["list", "--amqp-url", "amqp://guest:guest@127.0.0.1:1/"], out=io.StringIO()
    )
    assert status == 1
    assert capsys.readouterr().err.startswith("onboarding-parked: cannot reach RabbitMQ")
