"""Processes that die mid-batch: SIGKILL (a crash, the OOM killer) and SIGTERM (a rollout, a
scale-down) of each service, and the mailer killed right after the SMTP server took a mail."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Sequence

import pytest

from tests.faults.harness import MID_BATCH, Baseline, Fault, Recovery, run_burst, verdict
from tests.support.faults_report import Expectations
from tests.support.faults_smtp import AcceptedMail
from tests.support.faults_system import IN_FLIGHT_WINDOW, FaultLab

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]

# uvicorn re-raises SIGTERM after its graceful shutdown: -15 is a clean stop too.
CLEAN_EXITS = (0, -signal.SIGTERM)


def kill_and_restart(names: Sequence[str], sig: signal.Signals) -> Fault:
    async def inject(lab: FaultLab) -> Recovery:
        recovery = Recovery(at=0.0)
        codes = await asyncio.gather(*(lab.kill(name, sig) for name in names))
        for name, code in zip(names, codes, strict=True):
            recovery.notes.append(f"{name} exited {code}")
            if sig is signal.SIGTERM and code not in CLEAN_EXITS:
                recovery.failures.append(f"{name} did not stop cleanly on SIGTERM (exit {code})")
        ready = await asyncio.gather(*(lab.restart(name) for name in names))
        recovery.at = max(ready)
        return recovery

    return inject


@pytest.mark.parametrize(
    ("names", "sig", "trigger"),
    [
        pytest.param(("mailer",), signal.SIGKILL, None, id="mailer-SIGKILL"),
        # Early, while the outbox relay is still publishing the burst.
        pytest.param(("invitations",), signal.SIGKILL, 1, id="invitations-SIGKILL"),
        pytest.param(("users", "auth-listener"), signal.SIGKILL, None, id="others-SIGKILL"),
        pytest.param(("mailer",), signal.SIGTERM, None, id="mailer-SIGTERM"),
        pytest.param(("invitations",), signal.SIGTERM, 1, id="invitations-SIGTERM"),
        pytest.param(("users", "auth-listener"), signal.SIGTERM, None, id="others-SIGTERM"),
    ],
)
async def test_a_service_killed_mid_batch_loses_nothing(
    lab: FaultLab,
    baseline: Baseline,
    names: tuple[str, ...],
    sig: signal.Signals,
    trigger: int | None,
) -> None:
    figures = await run_burst(
        lab,
        scenario=f"{' + '.join(names)} {sig.name} mid-batch",
        fault=f"{sig.name} of {', '.join(names)} once the burst is under way; restarted at once",
        inject=kill_and_restart(names, sig),
        baseline=baseline,
        trigger=trigger or MID_BATCH,
    )
    verdict(figures, lab)


async def test_mailer_killed_after_the_smtp_server_accepted_a_mail(
    lab: FaultLab, baseline: Baseline
) -> None:
    """The worst moment: the server has the mail, the mailer has not recorded it. The resend
    must carry the same Message-ID, and duplicates stay within what was in flight."""
    killed: list[AcceptedMail] = []

    async def inject(lab: FaultLab) -> Recovery:
        mailer = lab.services["mailer"]

        def kill_once(mail: AcceptedMail) -> None:
            # On the SMTP server's thread, between taking the mail and answering 250.
            if not killed:
                killed.append(mail)
                os.kill(mailer.pid, signal.SIGKILL)

        lab.smtp.handler.after_accept = kill_once
        # The next mail the server takes is the last this process sends.
        code = await asyncio.to_thread(mailer.wait_exit, 60)
        lab.smtp.handler.after_accept = None
        assert killed, "no mail went out to kill the mailer after"
        return Recovery(at=await lab.restart("mailer"), notes=[f"mailer exited {code}"])

    figures = await run_burst(
        lab,
        scenario="mailer SIGKILL after SMTP accepted",
        fault="SIGKILL of the mailer between the SMTP server taking a mail and its 250",
        inject=inject,
        baseline=baseline,
        expected=Expectations(duplicates=IN_FLIGHT_WINDOW),
    )
    copies = Counter(mail.message_id for mail in lab.smtp.accepted)
    figures.notes.append(f"the mail taken at the kill went out {copies[killed[0].message_id]}x")
    verdict(figures, lab)
