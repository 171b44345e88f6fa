"""Fake Slack incoming webhook with Block Kit validation (INTEGRATIONS.md §3).

Answers like the real endpoint: 200 ``ok`` or an error status with a one-word plain-text body
(``invalid_payload``, ``no_text``, ``invalid_blocks``, ``msg_blocks_too_long``). The fake checks the
documented limits and refuses fields a block does not define; it records every accepted message.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import parse_qs

from .protocol import Platform, Request, Response, retry_after_header, text_response

MAX_BLOCKS = 50
MAX_MESSAGE_CHARS = 13000
MAX_BLOCK_ID = 255
TEXT_TYPES = ("plain_text", "mrkdwn")
INTERACTIVE_ELEMENTS = (
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "static_select",
    "external_select",
    "users_select",
    "conversations_select",
    "channels_select",
    "multi_static_select",
    "multi_users_select",
    "timepicker",
)


class InvalidBlocks(ValueError):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidBlocks(message)


def _only(obj: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = set(obj) - allowed
    _require(not extra, f"{where}: unsupported field(s) {sorted(extra)}")


def _text(obj: Any, where: str, max_length: int, plain_only: bool = False) -> None:
    _require(isinstance(obj, dict), f"{where} must be a text object")
    kind = obj.get("type")
    _require(
        kind in (("plain_text",) if plain_only else TEXT_TYPES), f"{where}: bad text type {kind!r}"
    )
    allowed = {"type", "text", "emoji"} if kind == "plain_text" else {"type", "text", "verbatim"}
    _only(obj, allowed, where)
    text = obj.get("text")
    _require(
        isinstance(text, str) and 1 <= len(text) <= max_length,
        f"{where}: text must be 1-{max_length} characters",
    )
    for flag in ("emoji", "verbatim"):
        _require(not isinstance(obj.get(flag), str), f"{where}: {flag} must be a boolean")


def _optional_string(obj: dict[str, Any], key: str, max_length: int, where: str) -> None:
    if key in obj:
        value = obj[key]
        _require(
            isinstance(value, str) and 1 <= len(value) <= max_length,
            f"{where}.{key} must be 1-{max_length} characters",
        )


def _button(element: dict[str, Any], where: str) -> None:
    _only(
        element,
        {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"},
        where,
    )
    _text(element.get("text"), f"{where}.text", 75, plain_only=True)
    _optional_string(element, "action_id", 255, where)
    _optional_string(element, "url", 3000, where)
    _optional_string(element, "value", 2000, where)
    _optional_string(element, "accessibility_label", 75, where)
    if "style" in element:
        _require(
            element["style"] in ("primary", "danger"), f"{where}.style must be primary or danger"
        )


def _image_element(element: dict[str, Any], where: str) -> None:
    _only(element, {"type", "image_url", "alt_text", "slack_file"}, where)
    _require("image_url" in element or "slack_file" in element, f"{where}: image_url is required")
    _optional_string(element, "image_url", 3000, where)
    _require(
        isinstance(element.get("alt_text"), str) and element["alt_text"],
        f"{where}: alt_text is required",
    )


def _element(element: Any, where: str) -> None:
    _require(isinstance(element, dict), f"{where} must be an object")
    kind = element.get("type")
    if kind == "button":
        _button(element, where)
    elif kind == "image":
        _image_element(element, where)
    else:
        _require(kind in INTERACTIVE_ELEMENTS, f"{where}: unknown element type {kind!r}")
        _optional_string(element, "action_id", 255, where)


def validate_block(block: Any, index: int) -> None:
    where = f"blocks[{index}]"
    _require(isinstance(block, dict), f"{where} must be an object")
    kind = block.get("type")
    if "block_id" in block:
        _optional_string(block, "block_id", MAX_BLOCK_ID, where)
    if kind == "section":
        _only(block, {"type", "block_id", "text", "fields", "accessory", "expand"}, where)
        _require("text" in block or "fields" in block, f"{where}: section needs text or fields")
        if "text" in block:
            _text(block["text"], f"{where}.text", 3000)
        if "fields" in block:
            fields = block["fields"]
            _require(
                isinstance(fields, list) and 1 <= len(fields) <= 10, f"{where}.fields: 1-10 items"
            )
            for position, item in enumerate(fields):
                _text(item, f"{where}.fields[{position}]", 2000)
        if "accessory" in block:
            _element(block["accessory"], f"{where}.accessory")
    elif kind == "header":
        _only(block, {"type", "block_id", "text"}, where)
        _text(block.get("text"), f"{where}.text", 150, plain_only=True)
    elif kind == "divider":
        _only(block, {"type", "block_id"}, where)
    elif kind == "context":
        _only(block, {"type", "block_id", "elements"}, where)
        elements = block.get("elements")
        _require(
            isinstance(elements, list) and 1 <= len(elements) <= 10, f"{where}.elements: 1-10 items"
        )
        for position, element in enumerate(elements):
            name = f"{where}.elements[{position}]"
            if isinstance(element, dict) and element.get("type") == "image":
                _image_element(element, name)
            else:
                _text(element, name, 3000)
    elif kind == "actions":
        _only(block, {"type", "block_id", "elements"}, where)
        elements = block.get("elements")
        _require(
            isinstance(elements, list) and 1 <= len(elements) <= 25, f"{where}.elements: 1-25 items"
        )
        for position, element in enumerate(elements):
            _require(
                isinstance(element, dict) and element.get("type") != "image",
                f"{where}.elements[{position}]: not an interactive element",
            )
            _element(element, f"{where}.elements[{position}]")
    elif kind == "image":
        _only(block, {"type", "block_id", "image_url", "slack_file", "alt_text", "title"}, where)
        _require("image_url" in block or "slack_file" in block, f"{where}: image_url is required")
        _optional_string(block, "image_url", 3000, where)
        alt = block.get("alt_text")
        _require(
            isinstance(alt, str) and 1 <= len(alt) <= 2000, f"{where}.alt_text: 1-2000 characters"
        )
        if "title" in block:
            _text(block["title"], f"{where}.title", 2000, plain_only=True)
    elif kind == "rich_text":
        _only(block, {"type", "block_id", "elements"}, where)
        elements = block.get("elements")
        _require(
            isinstance(elements, list) and elements, f"{where}.elements must be a non-empty list"
        )
        for position, element in enumerate(elements):
            _require(
                isinstance(element, dict)
                and element.get("type")
                in (
                    "rich_text_section",
                    "rich_text_list",
                    "rich_text_preformatted",
                    "rich_text_quote",
                )
                and isinstance(element.get("elements"), list),
                f"{where}.elements[{position}]: not a rich text element",
            )
    else:
        raise InvalidBlocks(f"{where}: unknown block type {kind!r}")


class SlackFake(Platform):
    name = "slack"

    def __init__(self) -> None:
        super().__init__()
        self.router.add("POST", "/services/{team}/{bot}/{secret}", self.post_message)
        self.reset()

    def reset(self) -> None:
        super().reset()
        self.messages: list[dict[str, Any]] = []
        self.rejected: list[dict[str, Any]] = []

    def snapshot(self) -> dict[str, Any]:
        return {"messages": list(self.messages), "rejected": list(self.rejected), **self.counters()}

    def export_state(self) -> dict[str, Any]:
        return {"messages": self.messages, "rejected": self.rejected}

    def import_state(self, data: dict[str, Any]) -> None:
        self.messages = list(data.get("messages", []))
        self.rejected = list(data.get("rejected", []))

    def authenticate(self, request: Request) -> Response | None:
        return None  # the secret path is the credential

    def error(self, status: int, message: str) -> Response:
        if status == 404:
            return text_response(404, "no_service")
        if status == 405:
            return text_response(405, "invalid_method")
        return text_response(status, "rollup_error" if status >= 500 else "invalid_payload")

    def fault(self, status: int, retry_after: float | None) -> Response:
        if status == 429:
            return text_response(
                429, "rate_limited", retry_after_header(1 if retry_after is None else retry_after)
            )
        bodies = {
            500: "rollup_error",
            403: "action_prohibited",
            404: "channel_not_found",
            410: "channel_is_archived",
        }
        return text_response(
            status, bodies.get(status, "service_unavailable"), retry_after_header(retry_after)
        )

    def _reject(self, request: Request, code: str, reason: str) -> Response:
        self.rejected.append(
            {"path": request.path, "error": code, "reason": reason, "at": time.time()}
        )
        return text_response(400, code)

    def post_message(self, request: Request) -> Response:
        payload: Any
        try:
            if request.content_type == "application/x-www-form-urlencoded":
                form = parse_qs(request.body.decode("utf-8"))
                payload = json.loads(form["payload"][0])
            else:
                payload = json.loads(request.body.decode("utf-8"))
        except (KeyError, ValueError, UnicodeDecodeError):
            return self._reject(request, "invalid_payload", "the body is not a JSON message")
        if not isinstance(payload, dict):
            return self._reject(request, "invalid_payload", "the message must be a JSON object")
        text = payload.get("text")
        blocks = payload.get("blocks")
        if text is not None and not isinstance(text, str):
            return self._reject(request, "invalid_payload", "text must be a string")
        if blocks is not None and not isinstance(blocks, list):
            return self._reject(request, "invalid_blocks", "blocks must be a list")
        if not text and not blocks and not payload.get("attachments"):
            return self._reject(request, "no_text", "neither text nor blocks")
        if blocks:
            if len(blocks) > MAX_BLOCKS:
                return self._reject(request, "invalid_blocks", f"more than {MAX_BLOCKS} blocks")
            try:
                for index, block in enumerate(blocks):
                    validate_block(block, index)
            except InvalidBlocks as error:
                return self._reject(request, "invalid_blocks", str(error))
        size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False))
        if size > MAX_MESSAGE_CHARS:
            return self._reject(request, "msg_blocks_too_long", f"{size} characters serialized")
        self.messages.append(
            {
                "webhook": request.path,
                "text": text,
                "blocks": blocks,
                "payload": payload,
                "received_at": time.time(),
            }
        )
        return text_response(200, "ok")
