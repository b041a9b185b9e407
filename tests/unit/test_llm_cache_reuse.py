"""Which part of the embedded model's cache a new prompt reuses (LlamaCppLLM._reuse), without the model.

A fold drops the oldest turns: the prompt goes on, after the system prefix, with a later part of what
was evaluated. A conversation that repeats itself holds those tokens at several places; the one that
goes on longest must be kept, or the fold re-reads the whole history (23 s in the soak bench).
"""

from __future__ import annotations

import numpy as np

from voxgate.backends.llm.llama_cpp_backend import LlamaCppLLM


class _Ctx:
    def __init__(self) -> None:
        self.removed: list[tuple[int, int]] = []
        self.shifted: list[tuple[int, int, int]] = []

    def kv_cache_seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        self.removed.append((p0, p1))
        return True

    def kv_cache_seq_shift(self, seq: int, p0: int, p1: int, delta: int) -> None:
        self.shifted.append((p0, p1, delta))


class _Llama:
    def __init__(self, cached: list[int]) -> None:
        self.input_ids = np.zeros(4096, dtype=np.intc)
        self.input_ids[: len(cached)] = cached
        self.n_tokens = len(cached)
        self._ctx = _Ctx()


def _backend(cached: list[int]) -> LlamaCppLLM:
    llm = object.__new__(LlamaCppLLM)
    llm._llm = _Llama(cached)  # type: ignore[assignment]
    llm._can_shift = True
    llm.shifted_tokens = 0
    return llm


SYSTEM = list(range(1000, 1040))
TURN = list(range(2000, 2050))  # the same exchange, said three times
OTHER = list(range(3000, 3050))


def test_the_longest_reuse_wins_when_the_conversation_repeats_itself() -> None:
    early, late = list(range(4000, 4030)), list(range(5000, 5030))
    cached = SYSTEM + early + TURN + late + TURN + OTHER
    prompt = SYSTEM + TURN + OTHER + [7, 7, 7]  # everything up to the second TURN was folded away
    llm = _backend(cached)
    reused = llm._reuse(prompt)
    assert reused == len(SYSTEM) + len(TURN) + len(OTHER)
    dropped = len(early) + len(TURN) + len(late)
    assert llm._llm._ctx.removed == [(len(SYSTEM), len(SYSTEM) + dropped)]  # type: ignore[attr-defined]
    assert list(llm._llm.input_ids[:reused]) == prompt[:reused]  # type: ignore[attr-defined]
    assert llm.shifted_tokens == dropped


def test_a_prompt_that_only_shares_the_prefix_shifts_nothing() -> None:
    llm = _backend(SYSTEM + TURN)
    assert llm._reuse(SYSTEM + OTHER) == len(SYSTEM)
    assert llm._llm._ctx.removed == []  # type: ignore[attr-defined]


def test_a_prompt_that_extends_the_cache_reuses_all_of_it() -> None:
    llm = _backend(SYSTEM + TURN)
    assert llm._reuse(SYSTEM + TURN + OTHER) == len(SYSTEM) + len(TURN)
    assert llm.shifted_tokens == 0
