"""Each tool reply is linked to the call it answers by one function, the same in every reader.

Before, the OpenAI chat reader (formats/chat.py, was model.py), the GEM tag parser
and the ShareGPT/Hermes/GEM record readers (formats/_common.py) each had their own
loop, and they disagreed: after a user message, the chat reader and the tag parser
left a tool reply unanswered, while the record readers linked it to the calls made
before the user spoke.
"""

from __future__ import annotations

import functools

import pytest

from gemlib import Message, Tool, ToolCall, Trajectory
from gemlib.errors import FormatError
from gemlib.formats import gem_tags, hermes, openai, sharegpt
from gemlib.formats._common import link_replies
from gemlib.formats.chat import from_chat
from gemlib.model import stable_id

TOOLS = (
    Tool(name="find", description="Find an order.", parameters={"type": "object"}),
    Tool(name="cancel", description="Cancel an order.", parameters={"type": "object"}),
)


def _calls(*names: str) -> Message:
    return Message(
        role="assistant",
        tool_calls=tuple(ToolCall(id=f"id-{n}", name=n, arguments={}) for n in names),
    )


def _reply(content: str, call_id: str | None = None) -> Message:
    return Message(role="tool", content=content, tool_call_id=call_id)


def _links(messages: list[Message]) -> list[tuple[str | None, str | None]]:
    return [(m.tool_call_id, m.name) for m in messages if m.role == "tool"]


def test_replies_without_ids_answer_the_pending_calls_in_order() -> None:
    linked = link_replies([_calls("find", "cancel"), _reply("a"), _reply("b"), _reply("c")])
    assert _links(linked) == [("id-find", "find"), ("id-cancel", "cancel"), (None, None)]


def test_a_reply_naming_its_call_answers_that_one() -> None:
    linked = link_replies([_calls("find", "cancel"), _reply("b", "id-cancel"), _reply("a")])
    assert _links(linked) == [("id-cancel", None), ("id-find", "find")]


def test_any_other_message_ends_the_calls_before_it() -> None:
    user = Message(role="user", content="wait")
    assert _links(link_replies([_calls("find"), user, _reply("a")])) == [(None, None)]
    later = link_replies([_calls("find"), _reply("a"), _calls("cancel"), _reply("b")])
    assert _links(later) == [("id-find", "find"), ("id-cancel", "cancel")]


def test_renamed_calls_keep_their_replies() -> None:
    rename = functools.partial(stable_id, "call", "t1")
    linked = link_replies([_calls("find", "cancel"), _reply("b", "id-cancel"), _reply("a")], rename)
    ids = [c.id for c in linked[0].tool_calls]
    assert ids == [rename(0), rename(1)]
    assert _links(linked) == [(rename(1), None), (rename(0), "find")]


def _conversation(interrupted: bool) -> Trajectory:
    """A call, (a user message,) its reply: what every reader must link alike."""
    messages = [
        Message(role="user", content="Cancel W1"),
        Message(role="assistant", tool_calls=(ToolCall(name="find", arguments={"id": "W1"}),)),
        *([Message(role="user", content="Hello?")] if interrupted else []),
        Message(role="tool", content='{"order": "W1"}'),
        Message(role="assistant", content="Found it."),
    ]
    return Trajectory(id="t1", tools=TOOLS, messages=tuple(messages))


@pytest.mark.parametrize("interrupted", [False, True])
def test_every_reader_links_replies_alike(interrupted: bool) -> None:
    written = _conversation(interrupted)
    read = {
        "gem": gem_tags.load(gem_tags.dump(written)),
        "hermes": hermes.load(hermes.dump(written)),
        "sharegpt": sharegpt.load(sharegpt.dump(written)),
    }
    for name, trajectory in read.items():
        reply = next(m for m in trajectory.messages if m.role == "tool")
        call = next(m for m in trajectory.messages if m.tool_calls).tool_calls[0]
        assert reply.tool_call_id == (None if interrupted else call.id), name
        assert reply.name == (None if interrupted else "find"), name
    record = openai.dump(written)
    for message in record["messages"]:
        message.pop("tool_call_id", None)
    if interrupted:
        with pytest.raises(FormatError, match=r"messages\[3\]: a tool message without"):
            from_chat(record)
    else:
        linked = from_chat(record)
        assert linked.messages[2].tool_call_id == linked.messages[1].tool_calls[0].id
