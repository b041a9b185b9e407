"""Server settings: environment variables (VOXGATE_*) over a TOML file (VOXGATE_CONFIG or
`voxgate --config FILE`) over defaults, one pydantic-settings model.

Every option has a default that runs the embedded local models with no API key and no network.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: The default `allowed_origins`: pages served from this machine, on any port.
LOOPBACK_ORIGINS = (
    "http://localhost",
    "https://localhost",
    "http://127.0.0.1",
    "https://127.0.0.1",
    "http://[::1]",
    "https://[::1]",
)


def input_language(stt_language: str) -> str | None:
    """`stt_language` as the recognizer takes it: "auto" (detect) is None."""
    return None if stt_language == "auto" else stt_language


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOXGATE_", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments, then VOXGATE_* variables, then the TOML file (keys are the field names)."""
        path = os.environ.get("VOXGATE_CONFIG")
        if not path:
            return (init_settings, env_settings)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"VOXGATE_CONFIG names {path!r}, which is not a file")
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=path))

    # --- network and access
    host: str = Field(
        default="127.0.0.1", description="Address to listen on; without API keys only a loopback address is allowed."
    )
    port: int = Field(default=8000, description="Port to listen on.")
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated API keys. A key may carry a scope: 'KEY' (everything), "
        "'KEY:sessions' (open WebSocket sessions only) or 'KEY:tokens' (mint temporary tokens only).",
    )
    max_sessions: int = Field(default=16, ge=1, description="Concurrent sessions before server_error.")
    max_sessions_per_key: int = Field(
        default=0,
        ge=0,
        description="Concurrent sessions one API key may hold before concurrency_exceeded; 0 = no limit.",
    )
    resume_window_s: float = Field(default=30.0, gt=0, description="How long a dropped session can be resumed.")
    max_token_ttl_s: int = Field(default=600, description="The longest life a /v1/token token may ask for, in seconds.")
    max_live_tokens: int = Field(
        default=10_000,
        ge=1,
        description="Live temporary tokens (and, apart, resume tokens) held in memory at once: past it a new "
        "temporary token is refused with 429 RATE_LIMITED, and a new resume token drops the one closest to expiry.",
    )
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="The largest HTTP request body of a JSON route, in bytes; 413 past it, counted while the body "
        "is read (the Twilio webhook takes 64 KB, a transcription upload 25 MB).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(LOOPBACK_ORIGINS),
        description="Without API keys: comma-separated browser origins (scheme://host[:port]; no port: any) whose "
        "pages may open WebSockets or send POST/PUT/PATCH/DELETE; the server's own origin is always allowed, "
        "'*' allows any. Their hosts, the listen host and public_url's are the only Host headers served.",
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Without API keys: comma-separated extra Host names served (besides loopback names, host, "
        "public_url's and the allowed origins' hosts); any other Host is refused 403 (DNS rebinding). '*': any.",
    )

    # --- speech to text
    stt_model: str = Field(default="base", description="Final transcripts: 'base', 'tiny.en' or a CT2 model dir.")
    stt_partial_model: str = Field(default="tiny.en", description="Live partials; same choices as stt_model.")
    stt_language: str = Field(default="en", description="Default input language (ISO 639-1); 'auto' detects.")
    stt_threads: int = Field(default=2, description="CPU threads of each Whisper model.")
    stt_workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="Transcriptions one Whisper model runs at once (CTranslate2 workers; each holds a copy of "
        "the weights). One made every session's transcripts queue behind each other's.",
    )
    stt_short_window: bool = Field(
        default=True,
        description="Encode each turn in a window of its own length (+3 s, at least 20 s) instead of Whisper's "
        "30 s: ~0.2 s faster per decode at the same accuracy on our sets. false restores faster-whisper's "
        "30 s window.",
    )
    stt_decoding: Literal["fast", "accurate"] = Field(
        default="fast",
        description="Final transcripts: 'fast' is greedy; 'accurate' is faster-whisper's default search (beam 5, "
        "timestamp tokens), ~0.1 s more per decode and ~0.2 s more to the first reply audio on 2 cores, for the "
        "same entity accuracy on our sets. Partials and backchannel checks are always greedy.",
    )
    stt_timeout_s: float = Field(default=30.0, gt=0, description="agent_timeout when a final decode takes longer.")
    partial_interval_ms: int = Field(default=600, ge=100, description="Audio between two partial decodes.")
    stt_backend: Literal["embedded", "openai"] = Field(
        default="embedded",
        description="'embedded' runs Whisper in-process; 'openai' sends every final and partial transcription to an "
        "OpenAI-compatible transcriptions API (OpenAI, speaches, another Voxgate).",
    )
    stt_base_url: str | None = Field(
        default=None,
        description="With stt_backend=openai: the API base URL, e.g. 'http://host:8000/v1'; unset is OpenAI's.",
    )
    stt_api_key: SecretStr | None = Field(default=None, description="With stt_backend=openai: the bearer key.")
    stt_remote_model: str = Field(default="whisper-1", description="With stt_backend=openai: the remote model name.")

    format_entities: bool = Field(
        default=True, description="Write spoken emails, phone numbers, IDs, amounts and dates in final transcripts."
    )
    term_packs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated domain term packs (a bundled name such as 'medical', or a file with one term "
        "a line): final transcripts are corrected towards very close matches, and see term_pack_hints.",
    )
    term_pack_hints: bool = Field(
        default=True,
        description="When a final transcript has words close to some pack terms, decode the turn again with those "
        "terms as hotwords (one more decode on those turns; with the medical pack about one ordinary turn in eight).",
    )

    echo_guard: bool = Field(default=True, description="Cancel the agent's own voice in the microphone (WebRTC AEC3).")

    # --- end of turn
    smart_turn: bool = Field(default=True, description="Use Smart Turn v3.2 between min and max silence.")
    smart_turn_threshold: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="P(complete) from Smart Turn that ends a turn with no transcript yet; words lower it.",
    )
    backchannel_words: bool = Field(
        default=True,
        description="Voice over the agent interrupts only when its words are more than a backchannel ('uh-huh', "
        "'yeah') or it lasts longer than one; off: any confirmed voice interrupts at once.",
    )
    barge_in_pause: bool = Field(
        default=True,
        description="With backchannel_words: voice over the agent pauses it at once (input.speech.started, the "
        "client stops playback) while its words are read; a backchannel resumes the reply at the clause that was "
        "playing, anything else interrupts it. Off: the agent talks on until the words are known (~0.5 s later).",
    )
    llm_prefetch: bool = Field(
        default=True,
        description="Start the LLM at the first pause when the words read as a finished turn (discarded, unheard, "
        "if the user goes on); saves the prefill on the first reply audio.",
    )

    # --- language model
    llm_model: str = Field(default="qwen2.5-coder-1.5b", description="Embedded model name or a GGUF path.")
    llm_threads: int = Field(default=2, description="CPU threads of the embedded LLM.")
    llm_context: int = Field(default=4096, description="Context window of the embedded LLM, in tokens.")
    llm_temperature: float = Field(default=0.6, description="Sampling temperature of replies.")
    llm_max_tokens: int = Field(default=200, description="The longest reply, in tokens.")
    llm_history_tokens: int = Field(
        default=1536,
        ge=256,
        description="Embedded LLM: how much of the conversation, in tokens, is sent verbatim; older turns are "
        "folded into a short recap, in steps (each fold re-reads what is kept once: ~10 s on 2 cores at the default).",
    )
    llm_remote_context_tokens: int = Field(
        default=16_384,
        ge=1024,
        description="OpenAI-compatible LLMs (the server's and those a session brings): the context window the "
        "conversation is fitted into, older turns folded into a recap. Set it to the model's real window.",
    )
    tool_guards: bool = Field(
        default=True,
        description="Tool calls made reliable: the embedded LLM decides call-or-speech on its first token and writes "
        "a call under a grammar from the tools' schemas, a call with arguments nobody said is spoken instead; every "
        "LLM's markup is kept from speech and entity arguments are taken as the user said them. Off only to measure "
        "what they do (voxgate bench tools).",
    )
    llm_seed: int = Field(default=-1, description="Sampling seed; -1 is random (set one for repeatable tests).")
    llm_first_token_timeout_s: float = Field(default=30.0, gt=0, description="agent_timeout past this.")
    llm_allowed_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated models a session may pick with the session.update extension field "
        "'llm_model' (besides llm_model itself). Embedded: model names or GGUF paths; openai: remote names.",
    )
    session_llm: bool = Field(
        default=False,
        description="Let a session bring its own OpenAI-compatible LLM with the session.update field 'llm' "
        "([{base_url, model, api_key}]). Off: the field is accepted, echoed and listed as not honoured.",
    )
    llm_backend: Literal["embedded", "openai"] = Field(
        default="embedded",
        description="'embedded' runs llm_model in-process with llama.cpp; 'openai' calls an OpenAI-compatible "
        "chat-completions server (Ollama, vLLM, llama.cpp's server, a hosted API), llm_model naming the remote model.",
    )
    llm_base_url: str | None = Field(
        default=None,
        description="With llm_backend=openai: the API base URL, e.g. 'http://localhost:11434/v1'; unset is OpenAI's.",
    )
    llm_api_key: SecretStr | None = Field(
        default=None, description="With llm_backend=openai: the bearer key; local servers usually need none."
    )
    llm_extra_headers: dict[str, str] = Field(
        default_factory=dict,
        description='With llm_backend=openai: extra HTTP headers on every request, as JSON: \'{"X-Tenant": "a"}\'.',
    )
    llm_timeout_s: float = Field(
        default=30.0, gt=0, description="With llm_backend=openai: connect/read timeout of each attempt, in seconds."
    )
    llm_max_retries: int = Field(
        default=2,
        ge=0,
        description="With llm_backend=openai: retries (with backoff) on connection errors, timeouts, 408/429/5xx.",
    )
    llm_fallback: Literal["none", "embedded"] = Field(
        default="none",
        description="With llm_backend=openai: 'embedded' answers with the default embedded model when the remote "
        "one fails before its reply starts.",
    )
    system_prompt: str = Field(
        default="You are a friendly, helpful voice assistant.", description="Used until a session sets its own."
    )

    # --- speech out
    default_voice: str = Field(
        default="joe", description="Voice of sessions that name none (GET /v1/voices lists them)."
    )
    tts_threads: int = Field(default=2, description="CPU threads of each local voice model.")
    tts_fast_first_clause: bool = Field(
        default=True,
        description="The first clause of each reply in Kokoro af_heart (ivy, eve, US English female sessions) is said "
        "by hibari heart, the tiny voice distilled from it (~0.02 s instead of ~1.2-2.4 s); the rest by af_heart. "
        "False: af_heart says all of it.",
    )
    tts_backend: Literal["embedded", "openai"] = Field(
        default="embedded",
        description="'openai' adds the voices of an OpenAI-compatible speech API (24 kHz pcm) to the local ones; "
        "a name both offer means the remote voice. Set default_voice to one of them to speak remotely by default.",
    )
    tts_base_url: str | None = Field(
        default=None,
        description="With tts_backend=openai: the API base URL, e.g. 'http://host:8000/v1'; unset is OpenAI's.",
    )
    tts_api_key: SecretStr | None = Field(default=None, description="With tts_backend=openai: the bearer key.")
    tts_remote_model: str = Field(default="tts-1", description="With tts_backend=openai: the remote model name.")
    tts_remote_voices: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["alloy", "echo", "fable", "onyx", "nova", "shimmer"],
        description="With tts_backend=openai: comma-separated remote voice names, passed through as given.",
    )
    reply_lead_s: float = Field(default=0.8, gt=0, description="Audio sent ahead of real-time playback.")

    web_token_key: SecretStr | None = Field(
        default=None,
        description="The API key the browser page's single-use tokens are minted under (it stays on the server). "
        "Unset on a server with keys: the page is off. Setting it lets anyone who can reach the page open sessions.",
    )

    # --- telephony and agent files
    twilio_auth_token: SecretStr | None = Field(
        default=None,
        description="Twilio account Auth Token: when set, POST /v1/twilio/voice checks the X-Twilio-Signature of "
        "every request (403 on a bad one) and may mint the stream's single-use token.",
    )
    agents_dir: str | None = Field(
        default=None,
        description="Directory of agent files (NAME.yaml), looked up before the bundled examples.",
    )
    public_url: str | None = Field(
        default=None,
        description="The server's public base URL as Twilio reaches it (https://voice.example.com): TwiML stream "
        "URLs and Twilio signature checks use it instead of the request's own host.",
    )

    # --- records: stored agents, session records and artifacts
    data_dir: str | None = Field(
        default=None,
        description="Directory of the server's records (stored agents, session records and their artifacts, in "
        "one SQLite file); unset: $XDG_DATA_HOME/voxgate, else ~/.local/share/voxgate. Created when first written.",
    )
    store_path: str | None = Field(
        default=None,
        description="The SQLite file of the records; unset: voxgate.sqlite3 in data_dir. ':memory:' keeps them only "
        "until the server stops.",
    )
    recording: bool = Field(
        default=False,
        description="Record each session's audio (stereo: the user left, the agent right) as its 'audio' artifact "
        "(audio/wav), fetched through GET /v1/sessions/{id}. Off: sessions keep only their timeline and metadata.",
    )
    session_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Session records and their artifacts older than this many days (from their end) are deleted; "
        "0 keeps them. Stored agents are kept until deleted.",
    )
    artifact_url_ttl_s: int = Field(
        default=300,
        ge=1,
        le=3600,
        description="How long an artifact link of GET /v1/sessions/{id} works (it needs no Authorization), in seconds.",
    )

    # --- several replicas
    redis_url: SecretStr | None = Field(
        default=None,
        description="Shared state in Redis for several replicas behind a load balancer (redis://host:6379/0): "
        "single-use tokens, resumable sessions, stored agents, session records and the per-key session cap are "
        "then fleet-wide (docs/scaling.md). Unset: one process, state in memory and the SQLite file.",
    )
    redis_prefix: str = Field(
        default="voxgate:", description="Prefix of every Redis key, so several fleets can share one Redis."
    )
    drain_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="SIGTERM: how long the replica takes to hand its sessions over (new sessions refused with 503, "
        "every socket closed with 1012 after its session is saved) before what is left is cut.",
    )

    # --- observability (docs/observability.md)
    metrics_open: bool = Field(
        default=False,
        description="GET /metrics without an API key (for a scraper on a private network that cannot send one). "
        "Off: with API keys configured, /metrics needs a key with every scope, like the admin routes; an open "
        "(keyless, loopback) server serves it to anyone who can reach it.",
    )
    otel_endpoint: str | None = Field(
        default=None,
        description="OpenTelemetry traces (one span per spoken turn, one child per stage) sent over OTLP/HTTP to "
        "this collector, e.g. 'http://otel-collector:4318' (/v1/traces is added). Unset: no traces. Headers "
        "(a vendor's key) come from OTEL_EXPORTER_OTLP_HEADERS.",
    )
    otel_service_name: str = Field(default="voxgate", description="The service.name of the traces' resource.")

    # --- start-up
    preload: bool = Field(default=True, description="Load every default model at start-up.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")

    @field_validator(
        "term_packs", "tts_remote_voices", "llm_allowed_models", "allowed_origins", "allowed_hosts", mode="before"
    )
    @classmethod
    def _split_packs(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value
