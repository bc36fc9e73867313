"""Block Kit checks of the fake Slack (``tests/fake_slack.py``): the limits Slack enforces.

``block_errors(blocks)`` lists what is wrong, worded like Slack's own ``invalid_blocks`` errors
(``must be less than 3001 characters [json-pointer:/blocks/0/text/text]``); empty means valid.
"""

from __future__ import annotations

from typing import Any

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MARKDOWN_TEXT = 12000
BLOCK_ID = 255
TEXT_TYPES = ("plain_text", "mrkdwn")
KNOWN_TYPES = frozenset(
    {
        "actions", "context", "context_actions", "divider", "file", "header", "image", "input",
        "markdown", "rich_text", "section", "table", "video",
    }
)  # fmt: skip


def block_errors(blocks: Any) -> list[str]:
    """Slack-worded errors of a ``blocks`` array (already decoded from JSON)."""
    if not isinstance(blocks, list):
        return ["must provide an array [json-pointer:/blocks]"]
    errors: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        errors.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    for index, block in enumerate(blocks):
        errors.extend(_block(block, f"/blocks/{index}"))
    return errors


def _block(block: Any, at: str) -> list[str]:
    if not isinstance(block, dict):
        return [f"must provide an object [json-pointer:{at}]"]
    kind = block.get("type")
    if not isinstance(kind, str):
        return [f"missing required field: type [json-pointer:{at}]"]
    if kind not in KNOWN_TYPES:
        return [f"unsupported type: {kind} [json-pointer:{at}/type]"]
    errors = _length(block.get("block_id"), f"{at}/block_id", BLOCK_ID, required=False)
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide text or fields [json-pointer:{at}]")
        if "text" in block:
            errors += _text_object(block["text"], f"{at}/text", SECTION_TEXT)
        if "fields" in block:
            errors += _items(block["fields"], f"{at}/fields", MAX_FIELDS)
            for index, item in enumerate(_as_list(block["fields"])):
                errors += _text_object(item, f"{at}/fields/{index}", FIELD_TEXT)
    elif kind == "header":
        errors += _text_object(block.get("text"), f"{at}/text", HEADER_TEXT, ("plain_text",))
    elif kind == "context":
        errors += _items(block.get("elements"), f"{at}/elements", MAX_CONTEXT_ELEMENTS)
        for index, element in enumerate(_as_list(block.get("elements"))):
            if isinstance(element, dict) and element.get("type") in TEXT_TYPES:
                errors += _text_object(element, f"{at}/elements/{index}", SECTION_TEXT)
            elif not isinstance(element, dict) or element.get("type") != "image":
                errors.append(
                    f"must be a text object or an image [json-pointer:{at}/elements/{index}]"
                )
    elif kind == "markdown":
        errors += _length(block.get("text"), f"{at}/text", MARKDOWN_TEXT)
    return errors


def _text_object(value: Any, at: str, limit: int, types: tuple[str, ...] = TEXT_TYPES) -> list[str]:
    if not isinstance(value, dict):
        return [f"must provide an object [json-pointer:{at}]"]
    if value.get("type") not in types:
        return [f"must be one of {', '.join(types)} [json-pointer:{at}/type]"]
    return _length(value.get("text"), f"{at}/text", limit)


def _length(value: Any, at: str, limit: int, *, required: bool = True) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, str):
        return [f"must provide a string [json-pointer:{at}]"]
    if not value:
        return [f"must be more than 0 characters [json-pointer:{at}]"]
    if len(value) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{at}]"]
    return []


def _items(value: Any, at: str, limit: int) -> list[str]:
    if not isinstance(value, list):
        return [f"must provide an array [json-pointer:{at}]"]
    if not value:
        return [f"must provide at least 1 item [json-pointer:{at}]"]
    if len(value) > limit:
        return [f"no more than {limit} items allowed [json-pointer:{at}]"]
    return []


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
