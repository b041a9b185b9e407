"""The Qwen2.5 ChatML prompt, written out here rather than taken from the GGUF.

The 1.5B GGUF's embedded template has a double-brace bug the model copies into its tool calls. The
text is deterministic (sorted JSON keys), so the system+tools prefix is byte-identical across turns
and llama.cpp reuses its evaluation instead of re-reading it (~5 s on 2 cores).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from voxgate.backends.base import ChatMessage, ToolSpec

VOICE_RULES = (
    "You are speaking out loud in a live voice conversation. Reply in one to three short spoken sentences. "
    "Never use markdown, lists, code or emoji."
)


def _tools_section(tools: Sequence[ToolSpec]) -> str:
    lines = "\n".join(
        json.dumps(
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
            },
            sort_keys=True,
        )
        for t in tools
    )
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query. "
        "Only if the user asks for something a function provides, call it: reply with the <tool_call> "
        "block only, never describe the call in words. Otherwise answer directly.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{lines}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within "
        "<tool_call></tool_call> XML tags:\n<tool_call>\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def render(messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> str:
    system = next((m.content for m in messages if m.role == "system"), "")
    out = [f"<|im_start|>system\n{system}\n{VOICE_RULES}{_tools_section(tools) if tools else ''}<|im_end|>\n"]
    first_system = True
    for m in messages:
        if m.role == "system":
            if not first_system:  # a later system message (the recap of folded turns) stays where it is
                out.append(f"<|im_start|>system\n{m.content}<|im_end|>\n")
            first_system = False
            continue
        if m.role == "user":
            out.append(f"<|im_start|>user\n{m.content}<|im_end|>\n")
        elif m.role == "assistant":
            calls = "".join(
                "\n<tool_call>\n"
                + json.dumps({"name": c.name, "arguments": c.arguments}, sort_keys=True)
                + "\n</tool_call>"
                for c in m.tool_calls
            )
            out.append(f"<|im_start|>assistant\n{m.content}{calls}<|im_end|>\n")
        elif m.role == "tool":
            out.append(f"<|im_start|>user\n<tool_response>\n{m.content}\n</tool_response><|im_end|>\n")
    out.append("<|im_start|>assistant\n")
    return "".join(out)
