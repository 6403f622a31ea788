"""Deterministic offline LLM client for tests and examples."""

from __future__ import annotations

from metaqore.mock_llm.client import MockLLMClient, MockLLMResponse

__all__ = ["MockLLMClient", "MockLLMResponse"]
