"""GBNF grammars for the embedded model's tool calls, built from the tools' JSON Schemas.

The 1.5B model writes calls with wrong types, made-up enum values or a missing required argument, and
sometimes half a call in prose. With a grammar, llama.cpp only samples tokens that keep the output
valid, so a call, once begun, is well-formed and matches its tool's schema (types, enums, patterns,
required properties). Two grammars are built:

- `call_grammar`: what follows an opened `<tool_call>\\n`: the call's JSON, its closing tag, and any
  further calls (parallel calls). This is what the backend uses: the "call or speak" choice is made
  on the first token (llama_cpp_backend.py), and only a call pays the grammar's per-token cost.
- `reply_grammar`: a whole reply: EITHER speech with no markup characters at all, OR one or more calls.
  Kept (and tested) for backends or settings that want the whole reply constrained; on 2 cores the
  grammar costs every spoken token too, which is why it is not the default path.

The GBNF text is cached per tool set (building it walks every schema); llama.cpp parses it when a
sampler is made, which `check_grammar` does without a model (a null vocabulary parses the same).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from typing import Any

from voxgate.backends.base import ToolSpec

log = logging.getLogger("voxgate.llm")

OPEN = "<tool_call>\n"
NAMED = '{"name": "'  # what every call begins with: written into the prompt, so the name is the first choice
CLOSE = "\n</tool_call>"
# Characters that spoken text never needs and markup always does.
MARKUP_CHARS = "<>{}[]`|\\"

_ANY_OBJECT = r"""
json-object ::= "{" json-space ( json-kv ( "," json-space json-kv )* )? "}" json-space
json-kv ::= json-string ":" json-space json-value
json-value ::= json-object | json-array | json-string | json-number | ("true" | "false" | "null") json-space
json-array ::= "[" json-space ( json-value ( "," json-space json-value )* )? "]" json-space
json-string ::= "\"" json-char* "\"" json-space
json-char ::= [^"\\\x00-\x1f] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
json-number ::= "-"? [0-9]+ ("." [0-9]+)? ([eE] [-+]? [0-9]+)? json-space
json-space ::= " "?
"""


def _literal(text: str) -> str:
    """A GBNF string literal: JSON's escaping is a subset of what GBNF reads."""
    return json.dumps(text)


def _key(tools: Sequence[ToolSpec]) -> str:
    return json.dumps([[t.name, t.parameters] for t in tools], sort_keys=True)


@functools.lru_cache(maxsize=64)
def _rules(key: str) -> tuple[str, str]:
    """(the rules, the name of the rule for one call's JSON) for a tool set, given by `_key`."""
    from llama_cpp.llama_grammar import SchemaConverter

    tools: list[list[Any]] = json.loads(key)
    converter = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
    alternatives = []
    for i, (name, parameters) in enumerate(tools):
        try:
            args = converter.visit(_object_schema(parameters), f"args-{i}")
        except Exception:  # a schema the converter does not follow: any JSON object, still a valid call
            log.warning("tool %s: parameters schema not usable for a grammar; any object allowed", name)
            args = "json-object"
        head = _literal(f'{json.dumps(name)[1:]}, "arguments": ')
        alternatives.append(f'{head} {args} "}}"')
    extra = converter.format_grammar()
    if "json-object" in " ".join(alternatives):
        extra += _ANY_OBJECT
    body = "call-rest ::= " + " | ".join(f"( {a} )" for a in alternatives) + "\n"
    body += f"call-json ::= {_literal(NAMED)} call-rest\n"
    return body + extra, "call-json"


def _object_schema(parameters: Any) -> dict[str, Any]:
    """The arguments' schema as an object schema (a tool may give `{}` or leave `type` out)."""
    schema = dict(parameters) if isinstance(parameters, dict) else {}
    schema.setdefault("type", "object")
    if schema.get("type") == "object":
        schema.setdefault("properties", {})
    return schema


def call_grammar(tools: Sequence[ToolSpec]) -> str:
    """After `<tool_call>\\n{"name": "`: the rest of one call's JSON, its closing tag, then more calls or the end."""
    rules, call = _rules(_key(tools))
    more = f"( {_literal(CLOSE + chr(10) + OPEN)} {call} )*"
    return f"root ::= call-rest {more} {_literal(CLOSE)}\n{rules}"


def reply_grammar(tools: Sequence[ToolSpec]) -> str:
    """A whole reply: speech that cannot contain markup characters, or one or more calls."""
    rules, call = _rules(_key(tools))
    banned = "".join("\\" + c if c in "[]\\^-" else c for c in MARKUP_CHARS)
    calls = f"{_literal(OPEN)} {call} ( {_literal(CLOSE + chr(10) + OPEN)} {call} )* {_literal(CLOSE)}"
    return (
        f"root ::= speech | calls\n"
        f"speech ::= [^{banned} \\t\\n\\x00-\\x1f] [^{banned}\\x00-\\x09\\x0b-\\x1f]*\n"
        f"calls ::= {calls}\n{rules}"
    )


def check_grammar(grammar: str) -> bool:
    """Whether llama.cpp parses `grammar` (what it does when sampling starts; no model is needed)."""
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(None, grammar.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True
