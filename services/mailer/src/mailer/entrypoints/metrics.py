"""The mailer's own metrics, counted by the entry points once an email's outcome is committed."""

from __future__ import annotations

from prometheus_client import Counter

from mailer.service_layer.services import ACCEPTANCE_KIND, INVITATION_KIND, WELCOME_KIND, Settled

EMAILS = Counter(
    "onboarding_emails_total",
    "Emails settled, by kind (invitation, welcome, acceptance), outcome (sent, failed) and "
    "reason (empty when sent; permanent or transient when failed).",
    ["kind", "outcome", "reason"],
)

EMAIL_DEFERRALS = Counter(
    "onboarding_email_deferrals_total",
    "Attempts after which an email waits to be tried again, by kind and reason: unavailable "
    "(the SMTP server unreachable, or 421) or deferred (a 4xx for this one email).",
    ["kind", "reason"],
)
UNAVAILABLE = "unavailable"
DEFERRED = "deferred"

# A closed set of labels: the SMTP server's words would make a series per error text.
SENT = ("sent", "")
PERMANENT_FAILURE = ("failed", "permanent")
TRANSIENT_FAILURE = ("failed", "transient")  # still deferred when its deadline passed

for _kind in (INVITATION_KIND, WELCOME_KIND, ACCEPTANCE_KIND):
    for _outcome, _reason in (SENT, PERMANENT_FAILURE, TRANSIENT_FAILURE):
        EMAILS.labels(kind=_kind, outcome=_outcome, reason=_reason)
    for _reason in (UNAVAILABLE, DEFERRED):
        EMAIL_DEFERRALS.labels(kind=_kind, reason=_reason)


def count_email(settled: Settled | None) -> None:
    """Count an email that ended now; None (a duplicate of a settled one) counts nothing."""
    if settled is None:
        return
    if settled.sent:
        outcome, reason = SENT
    else:
        outcome, reason = PERMANENT_FAILURE if settled.permanent else TRANSIENT_FAILURE
    EMAILS.labels(kind=settled.kind, outcome=outcome, reason=reason).inc()


def count_deferral(kind: str, *, server_unavailable: bool) -> None:
    EMAIL_DEFERRALS.labels(kind=kind, reason=UNAVAILABLE if server_unavailable else DEFERRED).inc()
