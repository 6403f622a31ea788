"""MockLLMClient: deterministic, offline stand-in for an LLM in tests and examples."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Matcher = str | re.Pattern[str] | Callable[[str], bool]
Responder = str | Callable[[str, dict[str, Any]], str]


@dataclass(frozen=True)
class MockLLMResponse:
    """One completion: the text, which scenario produced it, and a stable digest."""

    text: str
    scenario: str | None
    provider: str
    agent: str | None
    task_type: str | None
    digest: str
    prompt_tokens: int
    completion_tokens: int

    def __str__(self) -> str:
        return self.text


@dataclass
class _Scenario:
    name: str
    match: Matcher
    response: Responder

    def matches(self, prompt: str) -> bool:
        if isinstance(self.match, re.Pattern):
            return self.match.search(prompt) is not None
        if isinstance(self.match, str):
            return self.match.lower() in prompt.lower()
        return bool(self.match(prompt))


def _digest(*parts: str | None) -> str:
    joined = "\x1f".join(part or "" for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


@dataclass
class MockLLMClient:
    """Scenarios are tried in registration order; the first match answers.

    Every answer depends only on the inputs (prompt, agent, task type, provider) and
    the scenarios, never on time, randomness or the process: the same call gives the
    same response in any process. Nothing here touches the network.
    """

    provider: str = "mock"
    _scenarios: list[_Scenario] = field(default_factory=list)
    calls: list[MockLLMResponse] = field(default_factory=list)

    def register_scenario(self, name: str, *, match: Matcher, response: Responder) -> None:
        """Answer prompts that ``match`` (substring, regex or predicate) with ``response``.

        ``response`` is a string (``{prompt}``, ``{agent}``, ``{task_type}`` and
        ``{provider}`` are filled in) or a callable ``(prompt, context) -> str``.
        Registering an existing name replaces that scenario in place.
        """
        if not name:
            raise ValueError("a scenario needs a name")
        scenario = _Scenario(name, match, response)
        for position, existing in enumerate(self._scenarios):
            if existing.name == name:
                self._scenarios[position] = scenario
                return
        self._scenarios.append(scenario)

    def complete(
        self,
        prompt: str,
        *,
        agent: str | None = None,
        task_type: str | None = None,
        provider: str | None = None,
    ) -> MockLLMResponse:
        provider = provider or self.provider
        context: dict[str, Any] = {
            "prompt": prompt,
            "agent": agent or "",
            "task_type": task_type or "",
            "provider": provider,
        }
        digest = _digest(prompt, agent, task_type, provider)
        for scenario in self._scenarios:
            if scenario.matches(prompt):
                if callable(scenario.response):
                    text = scenario.response(prompt, dict(context))
                else:
                    text = _fill(scenario.response, context)
                response = self._response(text, scenario.name, context, digest)
                break
        else:
            text = (
                f"[mock:{provider}] {agent or 'agent'} handled "
                f"{task_type or 'a task'} ({digest[:12]})"
            )
            response = self._response(text, None, context, digest)
        self.calls.append(response)
        return response

    @staticmethod
    def _response(
        text: str, scenario: str | None, context: dict[str, Any], digest: str
    ) -> MockLLMResponse:
        return MockLLMResponse(
            text=text,
            scenario=scenario,
            provider=context["provider"],
            agent=context["agent"] or None,
            task_type=context["task_type"] or None,
            digest="sha256:" + digest,
            prompt_tokens=len(context["prompt"].split()),
            completion_tokens=len(text.split()),
        )


_PLACEHOLDER = re.compile(r"\{(prompt|agent|task_type|provider)\}")


def _fill(template: str, context: dict[str, Any]) -> str:
    """``template`` with the four placeholders filled in; every other brace is text
    (a JSON response needs no escaping)."""
    return _PLACEHOLDER.sub(lambda match: str(context[match.group(1)]), template)


__all__ = ["MockLLMClient", "MockLLMResponse"]
