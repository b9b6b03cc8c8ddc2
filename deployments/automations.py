"""The failed-run notification, declared with the deployments: every failed or crashed smda flow
run sends a message through a Prefect notification block.

    python deployments/automations.py                   # block `smda-failures` must exist
    SMDA_NOTIFY_WEBHOOK_URL=https://… python deployments/automations.py   # or make it (webhook)

The block is any Prefect notification block named ``smda-failures`` (Slack, Teams, e-mail,
a generic webhook … created in the UI under Blocks); with ``SMDA_NOTIFY_WEBHOOK_URL`` set, a
generic webhook block of that name is made (or updated) that POSTs JSON to the URL. The URL is
read from the environment and kept in the block (as a secret), never in this repository. Run it
again after changing the block: the automation ``smda run failed`` is replaced, not duplicated.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import timedelta
from typing import cast
from uuid import UUID

from prefect.automations import Automation
from prefect.blocks.notifications import CustomWebhookNotificationBlock
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture

BLOCK = "smda-failures"
AUTOMATION = "smda run failed"
FLOWS = ["smda-daily", "smda-backfill", "smda-train", "smda-validate"]

SUBJECT = "smda: {{ flow.name }} run {{ flow_run.name }} {{ flow_run.state.name }}"
BODY = (
    "The smda flow run {{ flow_run.name }} ({{ flow.name }}) ended {{ flow_run.state.name }}: "
    "{{ flow_run.state.message }}\n"
    "Its summary artifact in the Prefect UI says what to do (flow run id {{ flow_run.id }})."
)


def notification_block(url: str | None) -> UUID:
    """The id of the notification block ``smda-failures`` (made from ``url`` when given)."""
    if url:
        block = CustomWebhookNotificationBlock(
            name=BLOCK,
            url=url,
            json_data={"subject": "{{subject}}", "body": "{{body}}"},
            headers=None,
            cookies=None,
        )
        return cast(UUID, block.save(BLOCK, overwrite=True))
    with get_client(sync_client=True) as client:
        found = [doc.id for doc in client.read_block_documents() if doc.name == BLOCK]
    if not found:
        raise SystemExit(
            f"no notification block named {BLOCK!r}: create one in the Prefect UI (Blocks → "
            "Slack/Teams/e-mail/webhook) or set SMDA_NOTIFY_WEBHOOK_URL and run this again"
        )
    return found[0]


def failed_run_automation(block_id: UUID) -> Automation:
    """The automation: a Failed or Crashed run of any smda flow sends the block a message."""
    return Automation(
        name=AUTOMATION,
        description="Tell the operators when a run of an smda flow fails or crashes.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
            match_related={"prefect.resource.role": "flow", "prefect.resource.name": FLOWS},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )


def declare(url: str | None = None) -> Automation:
    """Create (or replace) the failed-run automation; returns it as stored."""
    automation = failed_run_automation(notification_block(url))
    with contextlib.suppress(ValueError):  # not declared yet
        cast(Automation, Automation.read(name=AUTOMATION)).delete()
    return cast(Automation, automation.create())


if __name__ == "__main__":
    made = declare(os.environ.get("SMDA_NOTIFY_WEBHOOK_URL"))
    print(f"automation {made.name!r} ({made.id}) notifies block {BLOCK!r}", file=sys.stderr)
