"""Agent files: a named voice agent in YAML, and the runner for its webhook tools.

A phone call has no client to send `session.update` or to answer `tool.call`, so the server does both
from an agent file: the prompt, greeting, voice, turn-taking and keyterms become the session's
configuration, and each tool names a webhook that the server POSTs `{"name", "arguments"}` to; the
answer goes back to the conversation exactly as a client's `tool.result` would.

`load_agent("support")` reads `support.yaml` from `Settings.agents_dir`, else the bundled examples
in `voxgate/agent_files/`. `{placeholders}` in the prompt and greeting are filled from the file's
`variables`, overridden per call (Twilio custom parameters).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from voxgate.capped_http import request_capped
from voxgate.protocol.events import (
    AudioEncoding,
    AudioFormat,
    InputConfig,
    OutputConfig,
    SessionConfig,
    Tool,
    TurnDetection,
)

log = logging.getLogger("voxgate.agents")

BUNDLED_DIR = Path(__file__).resolve().parent / "agent_files"
AGENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
MAX_FILE_BYTES = 256 * 1024
MAX_RESULT_CHARS = 2000  # a tool result goes into a 4k-token context: keep room for the conversation
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class AgentError(ValueError):
    """An agent that cannot be used: unknown name, unreadable or invalid file."""


class AgentTool(BaseModel):
    """A tool the agent's LLM may call, run by POSTing its arguments to `webhook`."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    webhook: str | None = None
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object" or not isinstance(value.get("properties", {}), dict):
            raise ValueError("parameters must be a JSON Schema object: {type: object, properties: {...}}")
        return value

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("webhook must be an http:// or https:// URL")
        return value


class AgentConfig(BaseModel):
    """One agent file. Unknown keys are errors: a typo must not silently drop a setting."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=AGENT_NAME.pattern)]
    description: str = ""
    system_prompt: Annotated[str, Field(min_length=1)]
    greeting: str | None = None
    voice: str | None = None
    language: str | None = None
    tools: list[AgentTool] = Field(default_factory=list)
    turn_detection: TurnDetection | None = None
    keyterms: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)] = Field(
        default_factory=list
    )
    variables: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_tools(self) -> AgentConfig:
        names = [t.name for t in self.tools]
        if len(names) != len(set(names)):
            raise ValueError(f"tool names must be unique: {names}")
        return self

    def tool(self, name: str) -> AgentTool | None:
        return next((t for t in self.tools if t.name == name), None)

    @property
    def interrupts(self) -> bool:
        return self.turn_detection is None or self.turn_detection.interrupt_response

    def session_config(
        self, encoding: AudioEncoding = "audio/pcmu", variables: dict[str, str] | None = None
    ) -> tuple[SessionConfig, set[str]]:
        """The `session.update` this agent amounts to, and the set of fields it sets."""
        values = {**self.variables, **(variables or {})}
        session = SessionConfig(
            system_prompt=fill(self.system_prompt, values),
            greeting=fill(self.greeting, values) if self.greeting else None,
            tools=[Tool(name=t.name, description=t.description, parameters=t.parameters) for t in self.tools],
            input=InputConfig(
                format=AudioFormat(encoding=encoding),
                turn_detection=self.turn_detection,
                keyterms=list(self.keyterms) or None,
                language=self.language,
            ),
            output=OutputConfig(voice=self.voice, format=AudioFormat(encoding=encoding)),
        )
        fields = {"system_prompt", "tools", "input", "output"} | ({"greeting"} if session.greeting else set())
        return session, fields


def fill(text: str, values: dict[str, str]) -> str:
    """Replace `{name}` with its value; unknown placeholders stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def agent_path(name: str, agents_dir: str | Path | None = None) -> Path:
    if not AGENT_NAME.match(name):
        raise AgentError(f"invalid agent name {name!r}: letters, digits, '-' and '_' only")
    folders = [Path(agents_dir)] if agents_dir else []
    for folder in [*folders, BUNDLED_DIR]:
        for suffix in (".yaml", ".yml"):
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return path
    raise AgentError(f"unknown agent {name!r}: no {name}.yaml in {', '.join(str(f) for f in [*folders, BUNDLED_DIR])}")


def load_agent(name: str, agents_dir: str | Path | None = None) -> AgentConfig:
    """The agent called `name`, from `agents_dir` first, then the bundled examples."""
    return load_agent_file(agent_path(name, agents_dir))


def load_agent_file(path: Path) -> AgentConfig:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise AgentError(f"{path}: agent file larger than {MAX_FILE_BYTES} bytes")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise AgentError(f"{path}: cannot read agent file: {exc}") from exc
    if not isinstance(raw, dict):
        raise AgentError(f"{path}: an agent file is a YAML mapping")
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise AgentError(f"{path}: file names the agent {raw['name']!r}; name the file {raw['name']}.yaml")
    try:
        return AgentConfig.model_validate(raw)
    except ValidationError as exc:
        raise AgentError(f"{path}: {exc}") from exc


def list_agents(agents_dir: str | Path | None = None) -> list[str]:
    folders = [Path(agents_dir)] if agents_dir else []
    names = {p.stem for folder in [*folders, BUNDLED_DIR] if folder.is_dir() for p in folder.glob("*.y*ml")}
    return sorted(n for n in names if AGENT_NAME.match(n))


# ---------------------------------------------------------------- webhook tools


class WebhookTools:
    """Runs an agent's tools by POSTing `{"name", "arguments"}` to each tool's webhook.

    Every outcome is a string for the LLM: the JSON (compacted) or text the webhook answered, or an
    `error: ...` sentence on a timeout, an HTTP error or an unreachable service, so the agent can
    tell the caller something went wrong instead of going silent.
    """

    def __init__(self, agent: AgentConfig, client: httpx.AsyncClient | None = None) -> None:
        self.agent = agent
        self._client = client or httpx.AsyncClient(headers={"User-Agent": "voxgate-tools"})
        self._own_client = client is None

    async def run(self, name: str, arguments: dict[str, Any]) -> str:
        tool = self.agent.tool(name)
        if tool is None:
            return f"error: the agent has no tool named {name!r}"
        if tool.webhook is None:
            return f"error: the {name} tool has no webhook configured"
        return await run_webhook(tool, arguments, self._client)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


async def run_webhook(tool: AgentTool, arguments: dict[str, Any], client: httpx.AsyncClient) -> str:
    assert tool.webhook is not None
    try:
        response, body = await request_capped(
            client,
            "POST",
            tool.webhook,
            limit=MAX_RESULT_CHARS * 4,  # room for JSON whitespace that is compacted below
            json={"name": tool.name, "arguments": arguments},
            timeout=tool.timeout_s,
        )
    except httpx.TimeoutException:
        log.warning("tool %s: webhook did not answer within %.1f s", tool.name, tool.timeout_s)
        return f"error: the {tool.name} service did not answer in time"
    except httpx.HTTPError as exc:
        log.warning("tool %s: webhook unreachable: %s", tool.name, exc)
        return f"error: the {tool.name} service could not be reached"
    if not response.is_success:
        log.warning("tool %s: webhook answered HTTP %d", tool.name, response.status_code)
        return f"error: the {tool.name} service failed (HTTP {response.status_code})"
    text = body.strip()
    if "json" in response.headers.get("content-type", ""):
        try:
            text = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
        except ValueError:
            pass
    if not text:
        return "ok"
    return text if len(text) <= MAX_RESULT_CHARS else text[:MAX_RESULT_CHARS] + " ...(truncated)"
