"""The embedded LLM: llama.cpp through llama-cpp-python, streamed from a thread of its own.

One `Llama` serves every session of the process (llama.cpp is not thread-safe, and a second copy of
the weights would not make 2 cores faster). How it is shared:
- **Its own thread.** Generation runs on a one-thread executor of the model's, not the default
  executor: sessions queued on the model used to hold every default thread and stall Whisper, the
  turn model and TTS for the whole process.
- **First come, first served.** Requests wait their turn in arrival order (an asyncio lock is FIFO);
  each is bounded (the prompt fits the window, session/context_window.py, and the reply
  `max_tokens`), so no session waits behind more than one turn of each other session.
- **A request that is given up stops costing.** One still waiting leaves the queue at once. One
  running checks its cancel flag between chunks of the prompt's evaluation (`PREFILL_CHUNK` tokens)
  and between generated tokens, so barge-in, a timeout or a dropped socket frees the model within a
  fraction of a second, even in the middle of reading a long prompt. What was evaluated stays in the
  cache: the next request with the same beginning does not redo it.
llama-cpp-python reuses the longest common prefix with its last evaluation, and our prompt keeps the
system+tools prefix byte-identical, so later turns of a session skip re-reading it. When a long
conversation's oldest turns are folded away, the prompt skips a span of what was evaluated: that span
is dropped from the cache and what follows is moved up (`_reuse`), so the fold costs the recap alone.

With tools, a reply is decided by the model naming a function (`tool_guards`, on by default): the prompt
goes on with the opening of a call, `<tool_call>\n{"name": "`, and the name is chosen under a grammar
between the session's tools and `chat`, the choice that means "no call". A tool's call is written under
a grammar built from the tools' schemas (tool_grammar.py); what follows a tool's name in every call,
`", "arguments": {"`, is read in one batch, not one step a token. `chat` takes the reply as its argument:
`{"name": "chat", "arguments": {"reply": "` is read in the same batch as the call's opening (speculatively:
for any other name it is dropped again), so a reply that calls nothing costs those ~15 prompt tokens
(~0.3 s on 2 cores) and no extra step; its text is what the model writes to the closing quote, with
every markup token banned (a ban is a mask: no per-token grammar cost). A call whose arguments nobody
said is spoken through `chat` too. A full reply grammar (speech | calls) was measured at +50-170 ms per
token on 2 cores.

Two earlier ways cost more or spoke worse (measured 2026-12-02 on the bench's no-call questions):
- speech as a normal assistant reply after a system note ("no function is needed ...") read after
  `chat` was named: the note's ~30 tokens and the call's opening cost 1.0-1.9 s before the first word
  (the bench's no-tool first audio: +2.05 s against guards off);
- speech from the turn's start with the call's opening dropped and call tokens banned, for 0.15 s: the
  model, which had meant a call, said "reply to the user in words", "reply: Hi!" or "Thank you!" to thanks.
The decision used to be the first token's probability of starting a call, against a threshold. With
any history before the turn, that probability was 0.00-0.05 for weather questions under a prompt that
says to call get_weather, the same as for small talk: the model chatted on and made the weather up.
After a tool's result, the reply is still spoken after a note that quotes the request and the result
(`_result_note`), and a refused call's reply after the "no function" note: both are rarer than a turn
that calls nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.backends.base import ChatMessage, LLMEvent, ToolCallRequest, ToolSpec
from voxgate.backends.llm.grammar_sampler import GrammarCache, GrammarSampler
from voxgate.backends.llm.qwen_prompt import render
from voxgate.backends.llm.tool_call_parser import ToolCallParser
from voxgate.backends.llm.tool_grammar import CLOSE, MARKUP_CHARS, NAMED, OPEN, call_grammar
from voxgate.text.tool_arguments import grounded

STOP = ["<|im_end|>", "<|endoftext|>", "<|im_start|>"]
PREFILL_CHUNK = 64  # tokens evaluated between two looks at the cancel flag
SHIFT_MIN_TOKENS = 32  # a dropped span is worth shifting past only if this much after it is reused
_END = object()
# After the user spoke the model always names a function (see the docstring). After a tool's result, only when
# its first token leans to another call by this much: asked every time, it names the tool it just called
# again (the user's words still ground it).
RESULT_CALL_THRESHOLD = 0.3
# The longest call (or calls) written under the grammar. The call is held back until it is whole, so at
# ~0.1 s a token on 2 cores this bounds the silence before it (inside the 30 s first-token timeout).
CALL_TOKENS = 200
# The choice that means "no call": the 1.5B model picks a tool for "hi" unless it is offered one for that.
CHAT_TOOL = ToolSpec(
    "chat",
    "Use this for everything no other function is for: greetings, small talk, thanks, jokes, opinions, "
    "general knowledge questions. Reply to the user in words.",
    # No parameters in the prompt, though a reply is written as its `reply` (_CHAT_REPLY): listed, the
    # argument made `chat` likelier than a tool (the bench's call/no-call fell from 80/84 to 78/84).
    {"type": "object", "properties": {}},
)
_CHAT_CALL = 'chat"'
_ARGUMENTS_OPEN = '", "arguments": {"'  # what follows a tool's name in every call of it (with properties)
_CHAT_REPLY = 'chat", "arguments": {"reply": "'  # a reply spoken through `chat` begins so, after `{"name": "`
# Its end: the closing quote and brace. A quote alone is text (a title in quotes; `\"` cannot be written, the
# backslash being markup), and a brace is allowed only right after a quote (`_reply_mask`).
_REPLY_END = [*STOP, '"}']
ASSISTANT_OPENING = "<|im_start|>assistant\n"  # how qwen_prompt.render ends every prompt
SPEECH_NOTE = (
    "<|im_start|>system\nNo function is needed for this message. Answer the user yourself, in one or two "
    "short spoken sentences. Do not mention functions or calls.<|im_end|>\n"
)
# After a tool's result the same note would make the model greet again ("Hello! How can I help?"). A note
# that only asked for "the function's result above" got the 1.5B model saying "The function's result
# means ...", and, after a `remember`, telling an earlier weather result again: this one quotes the request
# and the result (`_result_note`). Asked to tell "the user", it spoke of "the user": "you" it is.
RESULT_NOTE = (
    '<|im_start|>system\nYou have just done what the user asked ("{request}"). Result: {results}\nTell the user in '
    'one or two short spoken sentences, speaking to them as "you". Do not mention functions or calls.<|im_end|>\n'
)
NOTE_CLIP = 300  # characters of a request or a result quoted in the note
_STRING_PAIR = re.compile(r'"(\w+)":\s*"((?:[^"\\]|\\.)*)"')
log = logging.getLogger("voxgate.llm")


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class LlamaCppLLM:
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        temperature: float = 0.6,
        top_p: float = 0.9,
        max_tokens: int = 200,
        history_tokens: int = 1536,
        seed: int = -1,
        name: str = "local",
        tool_guards: bool = True,
    ) -> None:
        import llama_cpp
        from llama_cpp import Llama

        self.name = name
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            seed=seed if seed >= 0 else 0xFFFFFFFF,
            verbose=False,
        )
        self.context_tokens = n_ctx
        self.max_tokens = max_tokens
        self.history_tokens = history_tokens  # session/context_window.py folds the turns to fit this
        self._temperature, self._top_p = temperature, top_p
        self._rng = np.random.default_rng(seed if seed >= 0 else None)  # a first token sampled here (_sample)
        self._lock = threading.Lock()  # warmup() runs from other threads
        self._turn = asyncio.Lock()  # FIFO admission of streamed requests
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llm-{name}")
        self._can_shift = bool(llama_cpp.llama_memory_can_shift(self._llm._ctx.memory))
        self.tool_guards = tool_guards
        self._vocab: _ToolVocab | None = None  # built on the first reply with tools
        self._grammars: GrammarCache | None = None
        self.last_route = ""  # "call", "speech" ...: what the last reply with tools became (bench, tests)
        # For tests and metrics:
        self.requests = 0  # started streams
        self.cancelled_in_prefill = 0  # given up between two chunks of a prompt
        self.evaluated_tokens = 0  # prompt tokens evaluated (not found in the cache)
        self.shifted_tokens = 0  # tokens dropped from the middle of the cache instead of re-reading past them

    @property
    def waiting(self) -> int:
        """Requests queued behind the one the model runs (FIFO on `_turn`): the metrics' queue depth."""
        waiters = getattr(self._turn, "_waiters", None)  # asyncio.Lock's queue; no public count exists
        return sum(1 for w in waiters if not w.cancelled()) if waiters else 0

    @property
    def busy(self) -> bool:
        """A request (or a prompt read ahead) holds the model now."""
        return self._turn.locked()

    def count_tokens(self, text: str) -> int:
        """Exact, with the model's own tokenizer (the context window is fitted with it)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)) if text else 0

    def warmup(self, system_prompt: str, tools: Sequence[ToolSpec]) -> None:
        """Evaluate a prompt prefix now so the first real turn finds it cached."""
        prompt = render([ChatMessage(role="system", content=system_prompt)], self.prompt_tools(tools))
        with self._lock:
            for _ in self._llm.create_completion(prompt, max_tokens=1, stream=True, temperature=0.0):
                break
            if self.tool_guards:
                self._tool_vocab()  # ~1 s over the whole vocabulary: paid here, not by the first reply with tools

    def _prefill(self, tokens: list[int], cancelled: threading.Event) -> bool:
        """Evaluate all but the last prompt token in chunks, looking at `cancelled` between them; False if
        given up. create_completion then finds the prompt cached and only evaluates its last token."""
        llm: Any = self._llm
        end = len(tokens) - 1
        common = min(self._reuse(tokens), end)  # the last token is evaluated again: its logits start the reply
        if common < llm.n_tokens:
            llm.n_tokens = common  # eval() drops the cache past n_tokens before it evaluates more
        for start in range(common, end, PREFILL_CHUNK):
            if cancelled.is_set():
                return False
            chunk = tokens[start : min(end, start + PREFILL_CHUNK)]
            llm.eval(chunk)
            self.evaluated_tokens += len(chunk)
        return True

    def _reuse(self, tokens: list[int]) -> int:
        """How much of `tokens` the cache already holds. When the prompt skips a span of what was
        evaluated (the oldest turns, folded away by session/context_window.py), that span is dropped
        from the cache and the rest moved up (llama.cpp shifts positions), instead of re-reading
        everything after it: a fold costs its recap, not the whole history."""
        llm: Any = self._llm
        n = int(llm.n_tokens)
        cached = llm.input_ids
        prompt = np.asarray(tokens, dtype=cached.dtype)
        a = _common_prefix(cached[:n], prompt)
        if a == n or len(prompt) - a < SHIFT_MIN_TOKENS or not self._can_shift:
            return a
        # The longest reuse wins: a conversation that repeats itself (the same question, the same answer)
        # holds the prompt's next tokens at several places, and only the last of them goes on to the end.
        best, best_b = 0, -1
        for b in np.flatnonzero(cached[a + 1 : n - SHIFT_MIN_TOKENS + 1] == prompt[a]) + a + 1:
            reused = _common_prefix(cached[b:n], prompt[a:])
            if reused > best:
                best, best_b = reused, int(b)
        if best < SHIFT_MIN_TOKENS:
            return a
        ctx = llm._ctx
        ctx.kv_cache_seq_rm(0, a, best_b)
        ctx.kv_cache_seq_shift(0, best_b, n, a - best_b)
        kept = n - best_b
        cached[a : a + kept] = cached[best_b:n].copy()
        llm.n_tokens = a + kept
        self.shifted_tokens += best_b - a
        return a + best

    def _complete(
        self, tokens: list[int], cancelled: threading.Event, put: Callable[[str], None], **options: Any
    ) -> str:
        """Stream a completion of `tokens` to `put` until it ends or `cancelled`; what it wrote.

        `stop_at`: a text that ends it early (given back at the end of what it wrote)."""
        stop_at: str | None = options.pop("stop_at", None)
        chunks = self._llm.create_completion(
            tokens,
            stream=True,
            max_tokens=options.pop("max_tokens", self.max_tokens),
            stop=options.pop("stop", STOP),
            temperature=options.pop("temperature", self._temperature),
            top_p=self._top_p,
            **options,
        )
        written = ""
        try:
            for chunk in chunks:
                text = chunk["choices"][0]["text"]  # type: ignore[index]
                if stop_at is not None and stop_at in text:  # a single token of its own: it comes whole
                    before = text[: text.index(stop_at)]
                    if before:
                        put(before)
                    return written + before + stop_at
                if cancelled.is_set():
                    break
                if text:
                    put(text)
                    written += text
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return written

    def _logits(self, at: int = -1) -> np.ndarray:
        """The next token's logits after the last evaluation: after its last token, or its `at`-th (from 0; a
        token whose logits were asked for, `_eval_at`): llama.cpp finds an output by its token's position."""
        vocab = self._tool_vocab()
        return np.ctypeslib.as_array(self._llm._ctx.get_logits_ith(at), shape=(vocab.size,)).astype(np.float64)

    def _tool_vocab(self) -> _ToolVocab:
        if self._vocab is None:
            self._vocab = _ToolVocab.of(self._llm)
            self._grammars = GrammarCache(self._llm._model.vocab, self._vocab.eog)
        return self._vocab

    def _guarded(
        self,
        tokens: list[int],
        tools: Sequence[ToolSpec],
        sources: Sequence[str],
        cancelled: threading.Event,
        put: Callable[[str], None],
        *,
        result_note: str | None = None,
        made: Collection[str] = (),
    ) -> None:
        """A reply with tools: a call or speech, decided by the function the model names (see the module's
        docstring). `result_note`: the reply follows a tool's result, and this note asks its speech to tell it
        (`_result_note`). `made`: the calls made since the user spoke (`_call_key`): the same call again is
        refused, spoken instead."""
        llm: Any = self._llm
        self.last_route = "speech"
        if result_note is not None:
            llm.eval(tokens[-1:])  # what create_completion would do first; it then samples from these logits
            if _probability(self._logits(), self._tool_vocab().call_start) >= RESULT_CALL_THRESHOLD:
                call = self._call(tokens, tools, sources, cancelled, chat=_offers_chat(tools), made=made)
                if self._made(call, cancelled, put):
                    return
            self._speak_after_note(tokens, result_note, tools, sources, cancelled, put)
            return
        chat = _offers_chat(tools)
        opened = [*tokens, *self._tokens(OPEN + NAMED, special=True)]
        # The call's opening, and the `chat` reply's opening after it, read in one batch with the prompt's
        # last token: the logits after `{"name": "` choose the function, and when that is `chat`, those at
        # the end start the reply. For any other function the reply's opening is dropped again.
        reply = [*opened, *self._tokens(_CHAT_REPLY)] if chat else opened
        batch = reply[len(tokens) - 1 :]
        named, replying = self._eval_at(batch, [len(opened) - len(tokens) + 1, len(batch)])
        if chat and self._first_name_is_chat(named, tools):
            self.last_route = "chat"
            self._reply(reply, replying, cancelled, put)
            return
        llm.n_tokens = len(opened)
        call = self._call(tokens, tools, sources, cancelled, chat=chat, made=made, named=named)
        if self._made(call, cancelled, put):
            return
        if chat and self.last_route in ("chat", "ungrounded"):
            # `chat`, or a call of values nobody said (a question the model would answer through `remember`):
            # the reply goes through `chat` from the call's opening, which is still in the cache.
            llm.n_tokens = len(opened)  # the call's tokens dropped: the reply's opening is read again
            self._complete(reply, cancelled, put, logits_processor=[self._reply_mask(len(reply))], stop=_REPLY_END)
            return
        self._speak_after_note(tokens, SPEECH_NOTE, tools, sources, cancelled, put)

    def _made(self, call: str | None, cancelled: threading.Event, put: Callable[[str], None]) -> bool:
        """Whether the reply is over: a call was made (and put), or the reply was given up."""
        if call is not None:
            self.last_route = "call"
            put(OPEN + call)
        return call is not None or cancelled.is_set()

    def _tokens(self, text: str, *, special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=special))

    def _reply_mask(self, start: int) -> Callable[[Sequence[int], np.ndarray], np.ndarray]:
        """The token mask of a `chat` reply's text whose first token comes after `start` tokens: no markup, no
        call (inside a JSON string, a call cannot begin); closing braces only right after a quote the reply
        wrote (not the one that opens it), so that it ends (`_REPLY_END`) once it has said something."""
        vocab = self._tool_vocab()

        def mask(input_ids: Sequence[int], scores: np.ndarray) -> np.ndarray:
            closing = scores[vocab.closes].copy()
            scores[vocab.markup] = scores[vocab.call_start] = -np.inf
            if len(input_ids) > start and vocab.ends_quote[int(input_ids[-1])]:
                scores[vocab.closes] = closing
            return scores

        return mask

    def _first_name_is_chat(self, named: np.ndarray, tools: Sequence[ToolSpec]) -> bool:
        """Whether the best first token of a function's name (under the grammar) can only begin `chat`."""
        assert self._grammars is not None  # made with the vocabulary
        token = self._grammars.get(call_grammar([*tools, CHAT_TOOL])).best(named)
        if token is None:
            return False
        head = self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")
        return _only_chat(head, [t.name for t in tools])

    def _reply(
        self, tokens: list[int], logits: np.ndarray, cancelled: threading.Event, put: Callable[[str], None]
    ) -> None:
        """The `chat` reply's text after `tokens` (evaluated; `logits` follow them), to its closing quote. Its
        first token is sampled here from the logits kept from the batch, so nothing is evaluated twice."""
        llm: Any = self._llm
        mask = self._reply_mask(len(tokens))
        first = self._sample(mask(tokens, logits.copy()))
        if first in self._tool_vocab().eog:
            return
        try:
            text = llm.detokenize([first], special=False).decode("utf-8")
        except UnicodeDecodeError:  # part of a character: let create_completion sample it (one more evaluation)
            llm.n_tokens = len(tokens) - 1
            self._complete(tokens, cancelled, put, logits_processor=[mask], stop=_REPLY_END)
            return
        put(text)
        self._complete([*tokens, first], cancelled, put, logits_processor=[mask], stop=_REPLY_END)

    def _speak_after_note(
        self,
        tokens: list[int],
        note: str,
        tools: Sequence[ToolSpec],
        sources: Sequence[str],
        cancelled: threading.Event,
        put: Callable[[str], None],
    ) -> None:
        """Speech after a short system note before the reply: that no function fits (a call refused) or what a
        result was, so the model answers instead of telling a call in words. The note costs its own ~30 tokens
        (~0.6 s on 2 cores): the prompt before it is cached. Speech that turns into a call (`<tool_call>` after
        some words) goes on as a call under the grammar."""
        vocab = self._tool_vocab()
        tokens = self._speech_prompt(tokens, note)
        if not self._prefill(tokens, cancelled):  # create_completion evaluates the last token itself
            return
        # With its markup banned, the model may still mean a call and write one in words ("get_weather(Paris)",
        # "chat"), which the spoken filter drops, leaving nothing to say: so the first word may not be the start
        # of a function's name, the `chat` choice's included.
        first_ban = self._name_starts([*tools, CHAT_TOOL])
        first = [True]

        def no_markup(_: Any, scores: np.ndarray) -> np.ndarray:
            scores[vocab.markup] = -np.inf
            if first[0]:
                first[0] = False
                scores[first_ban] = -np.inf
            return scores

        opener = OPEN.strip()
        spoken = self._complete(tokens, cancelled, put, logits_processor=[no_markup], stop_at=opener)
        if spoken.endswith(opener) and not cancelled.is_set():
            said = self._tokens(spoken.removesuffix(opener))
            call = self._call(tokens + said, tools, sources, cancelled, chat=False)
            if call is not None:
                put(OPEN + call)

    def _sample(self, scores: np.ndarray) -> int:
        """One token from `scores` as create_completion samples (top-k 40, min-p 0.05, top-p, temperature)."""
        if self._temperature <= 0:
            return int(np.argmax(scores))
        top = np.argpartition(-scores, 40)[:40]
        top = top[np.argsort(-scores[top])]
        p = np.exp((scores[top] - scores[top[0]]) / self._temperature)
        p /= p.sum()
        keep = (p >= 0.05 * p[0]) & np.concatenate([[True], np.cumsum(p)[:-1] < self._top_p])
        p = np.where(keep, p, 0.0)
        return int(self._rng.choice(top, p=p / p.sum()))

    def _eval_at(self, tokens: list[int], at: Sequence[int]) -> list[np.ndarray]:
        """Evaluate `tokens` in one batch; the next-token logits after each of the `at`-th of them (1-based)."""
        llm: Any = self._llm
        n = int(llm.n_tokens)
        llm._ctx.kv_cache_seq_rm(-1, n, -1)
        batch = llm._batch
        batch.set_batch(batch=tokens, n_past=n, logits_all=False)
        for i in at:
            batch.batch.logits[i - 1] = True
        llm._ctx.decode(batch)
        llm.input_ids[n : n + len(tokens)] = tokens
        llm.n_tokens = n + len(tokens)
        self.evaluated_tokens += len(tokens)
        return [self._logits(i - 1) for i in at]

    def _speech_prompt(self, tokens: list[int], note_text: str) -> list[int]:
        """`tokens` (a prompt that ends by opening the assistant's turn) with `note_text` just before that."""
        llm: Any = self._llm
        opening = list(llm.tokenize(ASSISTANT_OPENING.encode("utf-8"), add_bos=False, special=True))
        if tokens[-len(opening) :] != opening:
            return tokens
        note = list(llm.tokenize(note_text.encode("utf-8"), add_bos=False, special=True))
        return tokens[: -len(opening)] + note + opening

    def _name_starts(self, tools: Sequence[ToolSpec]) -> np.ndarray:
        """The first token of each tool's name, as a reply's first word would be written (with or without
        a leading space, capitalised or not)."""
        llm: Any = self._llm
        starts: set[int] = set()
        for tool in tools:
            for form in {tool.name, tool.name.capitalize()}:
                for text in (form, " " + form):
                    ids = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
                    if ids:
                        starts.add(int(ids[0]))
        return np.asarray(sorted(starts), dtype=np.intp)

    def _call(
        self,
        prefix: list[int],
        tools: Sequence[ToolSpec],
        sources: Sequence[str],
        cancelled: threading.Event,
        *,
        chat: bool,
        made: Collection[str] = (),
        named: np.ndarray | None = None,
    ) -> str | None:
        """A call written greedily under the tools' grammar after `prefix` + `<tool_call>`: its text up to and
        with `</tool_call>`, or None when the model picked `chat` (no call: speak), when the call's
        arguments were never said (text/tool_arguments.py `grounded`), or when given up. `named`: the
        call's opening is already evaluated after `prefix`, and these are the logits that follow it."""
        llm: Any = self._llm
        if named is None:
            opened = [*prefix, *self._tokens(OPEN + NAMED, special=True)]
            if not self._prefill(opened, cancelled):
                return None
            llm.eval(opened[-1:])
            named = self._logits()
        eog = self._tool_vocab().eog
        names = [t.name for t in tools]
        assert self._grammars is not None  # made with the vocabulary
        sampler = self._grammars.get(call_grammar([*tools, CHAT_TOOL] if chat else tools))
        written: list[int] = []
        text = ""
        logits = named
        for _ in range(CALL_TOKENS):
            if cancelled.is_set():
                return None
            token = sampler.best(logits)
            if token is None or token in eog:
                break
            sampler.accept(token)
            written.append(token)
            text = llm.detokenize(written, special=True).decode("utf-8", errors="replace")
            if chat and _only_chat(text, names):
                self.last_route = "chat"
                return None
            if not self._so_far_grounded(text, tools, sources):  # a value nobody said: no need to write the rest
                self.last_route = "ungrounded"
                return None
            if (whole := _block_end(NAMED + text)) is not None:
                text = whole.removeprefix(NAMED)
                break
            forced = self._forced_after_name(text, tools, sampler)
            llm.eval([token, *forced])
            logits = self._logits()
            if forced:
                written.extend(forced)
                text = llm.detokenize(written, special=True).decode("utf-8", errors="replace")
        if text.endswith(CLOSE) and (whole := _block_end(NAMED + text + "\n" + OPEN)) is not None:
            text = whole.removeprefix(NAMED)  # the block's last call repeats one before it: dropped
        parser = ToolCallParser()
        text = NAMED + text
        calls = [e for e in [*parser.feed(OPEN + text), *parser.flush()] if isinstance(e, ToolCallRequest)]
        specs = {t.name: t for t in tools}
        if not calls or any(
            c.name not in specs or not grounded(c.arguments, specs[c.name].parameters, sources) for c in calls
        ):
            log.debug("call refused, spoken instead: %r", text[:200])
            self.last_route = "refused"
            return None
        if any(_call_key(c.name, c.arguments) in made for c in calls):
            log.debug("the same call again, spoken instead: %r", text[:200])
            self.last_route = "repeat"
            return None
        return text

    def _forced_after_name(self, text: str, tools: Sequence[ToolSpec], sampler: GrammarSampler) -> list[int]:
        """When `text` (after `{"name": "`) is a whole tool name that no other name goes on from, what every
        call of it writes next, `", "arguments": {"` (accepted by `sampler`): read in one batch with the name's
        last token instead of one step each, ~0.3 s less per call on 2 cores. Only tokens the grammar allows
        are taken (a forced token it refused would stop llama.cpp)."""
        spec = next((t for t in tools if t.name == text), None)
        if spec is None or any(t.name != text and t.name.startswith(text) for t in tools):
            return []
        properties = spec.parameters.get("properties") if isinstance(spec.parameters, dict) else None
        taken: list[int] = []
        for token in self._tokens(_ARGUMENTS_OPEN if properties else _ARGUMENTS_OPEN[:-1]):
            if not sampler.allows(token):
                break
            sampler.accept(token)
            taken.append(token)
        return taken

    @staticmethod
    def _so_far_grounded(text: str, tools: Sequence[ToolSpec], sources: Sequence[str]) -> bool:
        """The string arguments written so far (after the name) are grounded in `sources`."""
        name = text.split('"', 1)[0]
        spec = next((t for t in tools if t.name == name), None)
        try:
            done = {k: json.loads(f'"{v}"') for k, v in _STRING_PAIR.findall(text) if k != "name"}
        except json.JSONDecodeError:
            return True  # the whole call is checked when written
        return spec is None or grounded(done, spec.parameters, sources)

    def prompt_tools(self, tools: Sequence[ToolSpec]) -> Sequence[ToolSpec]:
        """The tools the prompt lists: with guards, `chat` too, the choice that means "no call"."""
        return [*tools, CHAT_TOOL] if tools and self.tool_guards and _offers_chat(tools) else tools

    async def read_ahead(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> None:
        """Evaluate a prompt now and generate nothing (a session's own prompt, before its first turn):
        the turn's request, rendered the same way, then finds it in the cache. It waits its turn like a
        request, and cancelling it stops it between two chunks (what was read stays read)."""
        prompt = render(messages, self.prompt_tools(tools))
        cancelled = threading.Event()

        def work() -> None:
            with self._lock:
                self._prefill(list(self._llm.tokenize(prompt.encode("utf-8"), special=True)), cancelled)

        async with self._turn:
            worker = asyncio.get_running_loop().run_in_executor(self._thread, work)
            try:
                await asyncio.shield(worker)
            finally:
                cancelled.set()
                if not worker.done():
                    await asyncio.shield(worker)

    async def stream(self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]) -> AsyncIterator[LLMEvent]:
        prompt = render(messages, self.prompt_tools(tools))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancelled = threading.Event()

        def put(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, text)

        def generate() -> None:
            try:
                with self._lock:
                    tokens = list(self._llm.tokenize(prompt.encode("utf-8"), special=True))
                    if not self._prefill(tokens, cancelled):
                        self.cancelled_in_prefill += 1
                        return
                    if tools and self.tool_guards:
                        after_result = bool(messages) and messages[-1].role == "tool"
                        note = _result_note(messages) if after_result else None
                        self._guarded(
                            tokens,
                            tools,
                            _sources(messages),
                            cancelled,
                            put,
                            result_note=note,
                            made=_calls_since_user(messages),
                        )
                        return
                    self._complete(tokens, cancelled, put)
            except BaseException as exc:  # handed to the consumer, which raises it
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        async with self._turn:  # waiting here is where a cancelled request costs nothing
            self.requests += 1
            worker = loop.run_in_executor(self._thread, generate)
            parser = ToolCallParser()
            try:
                while (item := await queue.get()) is not _END:
                    if isinstance(item, BaseException):
                        raise item
                    for event in parser.feed(str(item)):
                        yield event
                for event in parser.flush():
                    yield event
            finally:
                cancelled.set()
                # The model is free only when the thread has let go of it (within a chunk or a token).
                await asyncio.shield(worker) if not worker.done() else None


class _ToolVocab:
    """Token ids of the model's vocabulary that matter to a reply with tools (computed once per model)."""

    def __init__(
        self, markup: np.ndarray, call_start: np.ndarray, eog: np.ndarray, closes: np.ndarray, *, size: int
    ) -> None:
        self.size = size
        self.eog = eog
        self.markup = markup  # ids whose text holds a markup character: banned from speech
        self.call_start = call_start  # ids that begin a call: `<tool_call>`, `{`, a code fence
        self.closes = closes  # ids of closing braces only (`}}`, `}\n`): how a `chat` reply's call ends
        self.ends_quote = np.zeros(size, dtype=bool)  # ids whose text ends with a double quote

    @classmethod
    def of(cls, llm: Any) -> _ToolVocab:
        import llama_cpp

        vocab = llm._model.vocab
        size = int(llm.n_vocab())
        opener = llm.tokenize(OPEN.strip().encode("utf-8"), add_bos=False, special=True)
        markup: list[int] = []
        closes: list[int] = []
        quotes: list[int] = []
        call_start: list[int] = list(opener[:1]) if len(opener) == 1 else []
        buffer = ctypes.create_string_buffer(64)
        eog = [i for i in range(size) if llama_cpp.llama_vocab_is_eog(vocab, i)]
        for i in range(size):
            if i in call_start or i in eog:
                continue
            n = llama_cpp.llama_token_to_piece(vocab, i, buffer, len(buffer), 0, True)
            piece = buffer.raw[: max(n, 0)].decode("utf-8", errors="ignore")
            if piece.rstrip().endswith('"'):
                quotes.append(i)
            if piece.strip() and not piece.strip().strip("}"):
                closes.append(i)
            if any(c in piece for c in MARKUP_CHARS):
                markup.append(i)
                if piece.lstrip().startswith(("{", "```")):
                    call_start.append(i)
        made = cls(*(np.asarray(ids, dtype=np.intp) for ids in (markup, call_start, eog, closes)), size=size)
        made.ends_quote[quotes] = True
        return made


_NEXT_CALL = CLOSE + "\n" + OPEN


def _block_end(calls: str) -> str | None:
    """Where a block of calls (from `{"name": "`) should end early, or None to go on: at a further call
    that is `chat` or the same as one before it. The grammar allows any number of parallel calls, and the
    1.5B model, once it writes one, can go on repeating it (or alternate it with `chat`) until the token
    limit: 40 s of silence at 0.1 s a token. The calls before the repeat are the block."""
    parts = calls.split(_NEXT_CALL)
    if len(parts) < 2:
        return None
    done, current = parts[:-1], parts[-1]
    repeated = done[-1].strip() in (p.strip() for p in done[:-1])
    if repeated:
        done = done[:-1]
    elif not current.startswith(NAMED + _CHAT_CALL):
        return None
    return _NEXT_CALL.join(done) + CLOSE


def _result_note(messages: Sequence[ChatMessage]) -> str:
    """RESULT_NOTE for a reply after the tool results that end `messages`: the user's last words and what
    each call returned, quoted (clipped; no chat-template tokens: the note is read with special tokens on)."""

    def quote(text: str) -> str:
        text = " ".join(text.replace("<|", "<").split())
        return text[:NOTE_CLIP] + ("..." if len(text) > NOTE_CLIP else "")

    request = next((m.content for m in reversed(messages) if m.role == "user"), "")
    names = {c.call_id: c.name for m in messages if m.role == "assistant" for c in m.tool_calls}
    results: list[str] = []
    for m in reversed(messages):
        if m.role != "tool":
            break
        results.insert(0, f"{names.get(m.tool_call_id or '', 'function')}: {quote(m.content)}")
    return RESULT_NOTE.format(request=quote(request), results="; ".join(results))


def _only_chat(text: str, names: Sequence[str]) -> bool:
    """Whether the name written so far (`text`, after `{"name": "`) can only be `chat`'s: decided without
    waiting for its closing quote, when no tool's name begins the same way."""
    if text.startswith(_CHAT_CALL):
        return True
    head = text.split('"', 1)[0]
    return bool(head) and _CHAT_CALL.startswith(head) and not any(n.startswith(head) for n in names)


def _probability(logits: np.ndarray, ids: np.ndarray) -> float:
    """The softmax probability of any of `ids` under `logits`."""
    p = np.exp(logits - logits.max())
    return float(p[ids].sum() / p.sum())


def _call_key(name: str, arguments: dict[str, Any]) -> str:
    return name + json.dumps(arguments, sort_keys=True)


def _calls_since_user(messages: Sequence[ChatMessage]) -> set[str]:
    """The calls the assistant made after the user's last message (their `_call_key`s)."""
    made: set[str] = set()
    for m in reversed(messages):
        if m.role == "user":
            break
        made.update(_call_key(c.name, c.arguments) for c in m.tool_calls)
    return made


def _sources(messages: Sequence[ChatMessage]) -> list[str]:
    """What a call's arguments may come from: what the user said, tool results, recaps of folded turns."""
    system = [m for m in messages if m.role == "system"][1:]
    return [m.content for m in messages if m.role in ("user", "tool")] + [m.content for m in system]


def _offers_chat(tools: Sequence[ToolSpec]) -> bool:
    """Whether `chat` can be offered as the no-call choice: not when a tool of the session has that name."""
    return all(t.name != CHAT_TOOL.name for t in tools)
