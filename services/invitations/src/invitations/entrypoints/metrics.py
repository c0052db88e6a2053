"""The invitations service's own metrics, next to the entry points that count them: what the
domain decided is counted once it is committed, never inside the domain."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime

from prometheus_client import REGISTRY, Counter, Metric
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from invitations.context import InvitationsContext
from invitations.domain.model import InvitationStatus
from invitations.service_layer import services
from invitations.service_layer.services import InviteOutcome, InviteResult

INVITATIONS_REQUESTED = Counter(
    "onboarding_invitations_total",
    "Addresses posted to POST /api/v1/invitations, by result (queued, invalid, already_member, "
    "already_invited, duplicate_in_request).",
    ["result"],
)


class InvitationStatusCounts(Collector):
    """The gauge onboarding_invitations{status}. A collector of its own: prometheus_client
    reserves that name for the counter above (onboarding_invitations_total) and would refuse
    a Gauge of it, though Prometheus tells the two apart."""

    def __init__(self) -> None:
        self._counts = {status.value: 0.0 for status in InvitationStatus}

    def set(self, counts: dict[InvitationStatus, int]) -> None:
        self._counts = {status.value: float(counts.get(status, 0)) for status in InvitationStatus}

    def value(self, status: InvitationStatus) -> float:
        return self._counts[status.value]

    def describe(self) -> list[Metric]:
        return []  # registered without claiming names; collect() still runs on every scrape

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "onboarding_invitations",
            "Invitations now in each status (expired derived from expires_at).",
            labels=["status"],
        )
        for status, count in self._counts.items():
            family.add_metric([status], count)
        yield family


INVITATIONS_BY_STATUS = InvitationStatusCounts()
REGISTRY.register(INVITATIONS_BY_STATUS)

# Every series exists from the start, at 0, so rates and dashboards need no special case.
for _outcome in InviteOutcome:
    INVITATIONS_REQUESTED.labels(result=_outcome.value)


def count_invite_results(results: Iterable[InviteResult]) -> None:
    for result in results:
        INVITATIONS_REQUESTED.labels(result=result.outcome.value).inc()


def status_gauge_refresher(context: InvitationsContext) -> Callable[[], Awaitable[None]]:
    """For a periodic background job: one grouped count, every status set (0 included)."""

    async def refresh() -> None:
        INVITATIONS_BY_STATUS.set(
            await services.count_by_status(context.uow(), now=datetime.now(UTC))
        )

    return refresh
