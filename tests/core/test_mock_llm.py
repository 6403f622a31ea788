"""MockLLMClient (SPEC §2): scenarios, a deterministic default, the same answers in every
process, and never the network."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from metaqore.mock_llm import MockLLMClient, MockLLMResponse

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_substring_scenario_matches_case_insensitively() -> None:
    client = MockLLMClient()
    client.register_scenario("plan", match="Write a PLAN", response="1. design 2. build")
    answer = client.complete("please write a plan for checkout", agent="planner")
    assert isinstance(answer, MockLLMResponse)
    assert (answer.text, answer.scenario, str(answer)) == (
        "1. design 2. build",
        "plan",
        "1. design 2. build",
    )
    assert client.complete("write code").scenario is None


def test_a_regex_scenario_searches_the_prompt() -> None:
    client = MockLLMClient()
    client.register_scenario("ticket", match=re.compile(r"JIRA-\d+"), response="fixed")
    assert client.complete("close JIRA-42 today").scenario == "ticket"
    # A compiled pattern is used as compiled: no implicit case folding.
    assert client.complete("close jira-42 today").scenario is None


def test_a_predicate_scenario_is_called_with_the_prompt() -> None:
    seen: list[str] = []

    def long_prompt(prompt: str) -> bool:
        seen.append(prompt)
        return len(prompt) > 10

    client = MockLLMClient()
    client.register_scenario("long", match=long_prompt, response="tl;dr")
    assert client.complete("short").scenario is None
    assert client.complete("a much longer prompt").scenario == "long"
    assert seen == ["short", "a much longer prompt"]


def test_scenarios_are_tried_in_registration_order_and_a_name_is_replaced_in_place() -> None:
    client = MockLLMClient()
    client.register_scenario("first", match="code", response="from first")
    client.register_scenario("second", match="code", response="from second")
    assert client.complete("write code").text == "from first"
    # Re-registering keeps the scenario's place in the order.
    client.register_scenario("first", match="code", response="first, replaced")
    assert client.complete("write code").text == "first, replaced"
    client.register_scenario("first", match="never-in-a-prompt", response="unused")
    assert client.complete("write code").text == "from second"


def test_a_scenario_without_a_name_is_refused() -> None:
    with pytest.raises(ValueError, match="name"):
        MockLLMClient().register_scenario("", match="x", response="y")


def test_a_template_response_is_filled_from_the_call() -> None:
    client = MockLLMClient(provider="ollama")
    client.register_scenario(
        "echo",
        match="echo",
        response="{agent}/{task_type}@{provider}: {prompt} {unknown}",
    )
    answer = client.complete("echo me", agent="coder", task_type="code_creation")
    # Unknown placeholders are left as written.
    assert answer.text == "coder/code_creation@ollama: echo me {unknown}"
    assert (answer.provider, answer.agent, answer.task_type) == ("ollama", "coder", "code_creation")
    overridden = client.complete("echo again", provider="hmcp_gateway")
    assert overridden.text == "/@hmcp_gateway: echo again {unknown}"
    assert (overridden.agent, overridden.task_type) == (None, None)


def test_a_callable_response_gets_the_prompt_and_the_call_context() -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    def respond(prompt: str, context: dict[str, Any]) -> str:
        received.append((prompt, context))
        context["agent"] = "tampered"  # a copy: must not leak into the response
        return prompt.upper()

    client = MockLLMClient()
    client.register_scenario("shout", match="shout", response=respond)
    answer = client.complete("shout this", agent="coder", task_type="doc")
    assert answer.text == "SHOUT THIS"
    assert answer.agent == "coder"
    assert received == [
        (
            "shout this",
            {"prompt": "shout this", "agent": "tampered", "task_type": "doc", "provider": "mock"},
        )
    ]


def test_unmatched_prompts_get_a_deterministic_default() -> None:
    client = MockLLMClient()
    answer = client.complete("anything at all", agent="coder", task_type="code_creation")
    assert answer.scenario is None
    assert re.fullmatch(r"\[mock:mock\] coder handled code_creation \([0-9a-f]{12}\)", answer.text)
    assert answer.digest.startswith("sha256:") and answer.digest[7:19] in answer.text
    again = MockLLMClient().complete("anything at all", agent="coder", task_type="code_creation")
    assert again == answer
    # Every input counts.
    others = {
        MockLLMClient().complete("anything else", agent="coder", task_type="code_creation").text,
        MockLLMClient().complete("anything at all", agent="tester", task_type="code_creation").text,
        MockLLMClient().complete("anything at all", agent="coder", task_type="review").text,
        MockLLMClient()
        .complete("anything at all", agent="coder", task_type="code_creation", provider="ollama")
        .text,
    }
    assert answer.text not in others and len(others) == 4
    bare = MockLLMClient().complete("hello")
    assert re.fullmatch(r"\[mock:mock\] agent handled a task \([0-9a-f]{12}\)", bare.text)


def test_token_counts_and_the_call_log() -> None:
    client = MockLLMClient()
    client.register_scenario("plan", match="plan", response="one two three")
    first = client.complete("make a plan now")
    second = client.complete("something else")
    assert (first.prompt_tokens, first.completion_tokens) == (4, 3)
    assert client.calls == [first, second]


# -- across processes, and offline -----------------------------------------------------

_SCRIPT = textwrap.dedent(
    """
    import dataclasses, json, re, sys

    from metaqore.mock_llm import MockLLMClient

    client = MockLLMClient()
    client.register_scenario("plan", match="plan", response="plan for {agent}: {prompt}")
    client.register_scenario("ticket", match=re.compile(r"T-[0-9]+"), response="ticket {prompt}")
    client.register_scenario(
        "sorted", match=lambda p: "set" in p,
        response=lambda p, ctx: ",".join(sorted(set(p.split()))),
    )
    calls = [
        ("write a plan", {"agent": "planner", "task_type": "plan_creation"}),
        ("fix T-7", {"agent": "coder"}),
        ("a set of set words words", {}),
        ("unmatched prompt", {"agent": "coder", "task_type": "code_creation"}),
        ("unmatched prompt", {"provider": "ollama"}),
        ("\\u00e9t\\u00e9 \\u2603", {"agent": "\\u00e9", "task_type": "x"}),
    ]
    out = [dataclasses.asdict(client.complete(prompt, **kw)) for prompt, kw in calls]
    json.dump(out, sys.stdout, sort_keys=True)
    """
)


def _run(script: str, *, hash_seed: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "METAQORE_", "COV_CORE", "PYTEST"))
    }
    env["PYTHONHASHSEED"] = hash_seed
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_same_inputs_give_the_same_output_in_another_process(tmp_path: Path) -> None:
    runs = [_run(_SCRIPT, hash_seed=seed, tmp_path=tmp_path) for seed in ("0", "4242")]
    for run in runs:
        assert run.returncode == 0, run.stderr
    first, second = (json.loads(run.stdout) for run in runs)
    assert first == second
    assert [item["scenario"] for item in first] == ["plan", "ticket", "sorted", None, None, None]
    assert first[2]["text"] == "a,of,set,words"
    # The in-process answer is the same as well.
    assert (
        first[3]["text"]
        == MockLLMClient()
        .complete("unmatched prompt", agent="coder", task_type="code_creation")
        .text
    )


_OFFLINE = textwrap.dedent(
    """
    import sys

    def no_network(event, args):
        if event.startswith("socket."):
            raise RuntimeError(f"network access: {event} {args!r}")

    # Installed before anything of metaqore is imported: catches import-time use too.
    sys.addaudithook(no_network)

    from metaqore.mock_llm import MockLLMClient

    client = MockLLMClient(provider="openrouter")
    client.register_scenario("plan", match="plan", response="a plan")
    answers = [
        client.complete("write a plan", agent="planner", provider="openrouter"),
        client.complete("unmatched", agent="coder", task_type="code_creation"),
    ]
    print("|".join(answer.text for answer in answers))
    """
)


def test_it_never_touches_the_network(tmp_path: Path) -> None:
    run = _run(_OFFLINE, hash_seed="0", tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr
    planned, default = run.stdout.strip().split("|")
    assert planned == "a plan"
    assert default.startswith("[mock:openrouter] coder handled code_creation (")


def test_the_offline_check_would_catch_a_socket(tmp_path: Path) -> None:
    """The audit hook above is not vacuous: opening a socket under it fails."""
    script = _OFFLINE.replace(
        "from metaqore.mock_llm import MockLLMClient",
        "import socket; socket.socket().close()\nfrom metaqore.mock_llm import MockLLMClient",
    )
    run = _run(script, hash_seed="0", tmp_path=tmp_path)
    assert run.returncode != 0
    assert "network access: socket.__new__" in run.stderr


def test_a_json_response_is_returned_as_written() -> None:
    client = MockLLMClient()
    client.register_scenario(
        "json", match="plan", response='{"ok": true, "items": [0], "for": "{agent}", "x": "{0}"}'
    )
    text = client.complete("make a plan", agent="planner").text
    assert json.loads(text) == {"ok": True, "items": [0], "for": "planner", "x": "{0}"}
