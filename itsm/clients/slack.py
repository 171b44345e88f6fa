"""Slack incoming webhooks with Block Kit messages (INTEGRATIONS.md §3).

Blocks are built and checked with slack_sdk's block models (their validators know Block Kit's
length limits) before anything is sent; Slack itself answers a bare ``invalid_blocks``. The
webhook URL is the credential: it is never logged (redaction masks hooks.slack.com paths).
Webhooks carry no idempotency key: after an ambiguous failure a retry may post twice, so a
message should be worded so that a duplicate is harmless.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block, HeaderBlock, SectionBlock

from itsm.clients.base import HttpClient
from itsm.errors import FieldError, ValidationFailed
from itsm.types import CallLog

MAX_BLOCKS = 50
MAX_MESSAGE_CHARS = 13_000  # msg_blocks_too_long is seen around here (bolt-js#2509)


def build_blocks(title: str, text: str, fields: dict[str, str] | None = None) -> list[dict]:
    """A header, a markdown section and up to ten short fields, within Block Kit's limits."""
    blocks: list[Block] = [HeaderBlock(text=title[:150])]
    blocks.append(SectionBlock(text=text[:3000] or " "))
    if fields:
        items = [f"*{name}*\n{value}"[:2000] for name, value in list(fields.items())[:10]]
        blocks.append(SectionBlock(fields=items))
    return [block.to_dict() for block in blocks]


def check_blocks(blocks: list[dict[str, Any]]) -> None:
    errors: list[FieldError] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(FieldError("blocks", "max_length", f"{len(blocks)} blocks; at most 50"))
    for index, raw in enumerate(blocks):
        try:
            block = Block.parse(raw)
            if block is None:
                raise SlackObjectFormationError(f"unknown block type {raw.get('type')!r}")
            block.validate_json()
        except (SlackObjectFormationError, KeyError, TypeError) as exc:
            errors.append(FieldError(f"blocks[{index}]", "invalid", str(exc)))
    if len(json.dumps(blocks)) > MAX_MESSAGE_CHARS:
        errors.append(FieldError("blocks", "max_length", "message longer than 13,000 characters"))
    if errors:
        raise ValidationFailed(errors, platform="slack")


class SlackClient(HttpClient):
    platform = "slack"
    default_headers = {"Content-Type": "application/json"}

    def post_message(
        self, text: str, blocks: list[dict[str, Any]] | None = None, *, log: CallLog | None = None
    ) -> None:
        """Posts to the webhook's channel. ``text`` is the notification fallback."""
        if not text.strip():
            raise ValidationFailed(
                [FieldError("text", "required", "text is required")], platform="slack"
            )
        body: dict[str, Any] = {"text": text[:3000]}
        if blocks:
            check_blocks(blocks)
            body["blocks"] = blocks
        self.request("POST", "", json=body, expect=(200,), log=log)
