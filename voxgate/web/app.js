// The Voxgate browser assistant: microphone in, the agent's voice out, over one WebSocket.
// The API key never reaches this page: it asks the server for a single-use token each time it connects.
"use strict";

const RATE = 24000;            // the protocol's default PCM rate, both ways
const CHUNK = RATE / 10;       // 100 ms of microphone per input.audio message
const $ = (id) => document.getElementById(id);
window.voxgateStats = { scheduledChunks: 0, partials: 0, tokens: 0, resumes: 0, latencies: 0 };
const STAGE_NAMES = {
  end_of_turn: "end of turn", transcript: "transcript", llm_first_token: "LLM first token",
  first_clause: "first clause", tts_first_audio: "TTS first audio", first_audio: "first audio",
};

let ws = null, sessionId = null, ctx = null, micStream = null, micNode = null;
let wanted = false;            // the user wants to be connected (so a drop means: resume)
let cursor = 0;                // when the next reply chunk starts playing (AudioContext time)
let playing = [];              // scheduled sources, stopped on barge-in
let pending = new Float32Array(0);
let partialBubble = null;
let agents = {};               // agent files the server offers: name -> session.update
let toolResults = [];          // results of this reply's tool calls, sent after its reply.done
let resumeToken = null;        // from session.ready: also the page's credential for running agent tools

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function bubble(kind, text) {
  const div = document.createElement("div");
  div.className = `bubble ${kind}`;
  div.textContent = text;
  $("chat").appendChild(div);
  div.scrollIntoView({ block: "end" });
  return div;
}

function waterfall(event) {
  // [Voxgate] voxgate.turn.latency: each stage as a bar on one time axis, from the end of the user's speech.
  window.voxgateStats.latencies += 1;
  const total = Math.max(1, ...event.stages.map((s) => s.end_ms));
  const box = document.createElement("div");
  box.className = "waterfall";
  const head = document.createElement("div");
  head.textContent = event.first_audio_ms === null
    ? `turn ${event.outcome}`
    : `${(event.first_audio_ms / 1000).toFixed(2)} s to first audio${event.prefetched ? " (LLM started at a pause)" : ""}`;
  box.appendChild(head);
  for (const stage of event.stages) {
    const row = document.createElement("div");
    row.className = "stage";
    const name = document.createElement("span");
    name.textContent = STAGE_NAMES[stage.name] || stage.name;
    const track = document.createElement("span");
    track.className = "track";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.left = `${(100 * stage.start_ms) / total}%`;
    bar.style.width = `${(100 * (stage.end_ms - stage.start_ms)) / total}%`;
    track.appendChild(bar);
    const ms = document.createElement("span");
    ms.textContent = `${stage.end_ms - stage.start_ms} ms`;
    row.append(name, track, ms);
    box.appendChild(row);
  }
  $("chat").appendChild(box);
}

async function loadVoices() {
  const response = await fetch("/v1/voices");
  const catalog = await response.json();
  for (const voice of catalog.voices) {
    const option = new Option(`${voice.id} (${voice.language}${voice.kind === "alias" ? ", alias" : ""})`, voice.id);
    option.selected = voice.id === catalog.default;
    $("voice").add(option);
  }
}

async function loadAgents() {
  const response = await fetch("/v1/web/agents");
  if (!response.ok) return;
  for (const agent of (await response.json()).agents) {
    agents[agent.name] = agent.session;
    $("agent").add(new Option(agent.name, agent.name));
  }
}

function pickAgent() {
  const session = agents[$("agent").value];
  if (!session) return;
  $("prompt").value = session.system_prompt || "";
  $("greeting").value = session.greeting || "";
  if (session.output && session.output.voice) $("voice").value = session.output.voice;
}

function runTool(call) {
  // An agent file's tool runs on the server (its webhook); the result waits for this reply's reply.done.
  const agent = $("agent").value;
  const result = agent
    ? fetch(`/v1/web/agents/${agent}/tools/${call.name}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${resumeToken}` },
        body: JSON.stringify(call.arguments),
      })
        .then((r) => r.json()).then((body) => body.result || `error: ${body.message}`)
    : Promise.resolve(`error: no handler for ${call.name} in this page`);
  toolResults.push(result.then((text) => ({ type: "tool.result", call_id: call.call_id, result: text })));
}

async function token() {
  const response = await fetch("/v1/web/token", { method: "POST" });
  const body = await response.json();
  if (!response.ok) throw new Error(`${body.code}: ${body.message}`);
  window.voxgateStats.tokens += 1;
  return body.token;
}

function toBase64(int16) {
  let binary = "";
  const bytes = new Uint8Array(int16.buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function onMicFrame(frame) {
  const joined = new Float32Array(pending.length + frame.length);
  joined.set(pending);
  joined.set(frame, pending.length);
  pending = joined;
  while (pending.length >= CHUNK) {
    const chunk = pending.subarray(0, CHUNK);
    const pcm = new Int16Array(CHUNK);
    for (let i = 0; i < CHUNK; i++) pcm[i] = Math.max(-1, Math.min(1, chunk[i])) * 0x7fff;
    pending = pending.slice(CHUNK);
    if (ws && ws.readyState === WebSocket.OPEN && sessionId) {
      ws.send(JSON.stringify({ type: "input.audio", audio: toBase64(pcm) }));
    }
  }
}

async function startMicrophone() {
  if (micNode) return;
  micStream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
  });
  await ctx.audioWorklet.addModule("/web/worklet.js");
  micNode = new AudioWorkletNode(ctx, "mic-capture");
  micNode.port.onmessage = (event) => onMicFrame(event.data);
  ctx.createMediaStreamSource(micStream).connect(micNode);
}

function play(base64) {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  const buffer = ctx.createBuffer(1, pcm.length, RATE);
  const data = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) data[i] = pcm[i] / 32768;
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(ctx.destination);
  cursor = Math.max(cursor, ctx.currentTime + 0.02);
  source.start(cursor);
  cursor += buffer.duration;
  playing.push(source);
  source.onended = () => { playing = playing.filter((s) => s !== source); };
  window.voxgateStats.scheduledChunks += 1;
}

function flushPlayback() {
  for (const source of playing) { try { source.stop(); } catch (_) { /* already ended */ } }
  playing = [];
  cursor = 0;
}

function onEvent(event) {
  switch (event.type) {
    case "session.ready":
      sessionId = event.session_id;
      resumeToken = event.resume_token;
      status(`connected (${sessionId})`);
      startMicrophone().catch((err) => status(`microphone: ${err.message}`, true));
      break;
    case "input.speech.started":
      flushPlayback();  // barge-in: the agent stops at once
      break;
    case "transcript.user.delta":
      window.voxgateStats.partials += 1;
      if (!partialBubble) partialBubble = bubble("user partial", "");
      partialBubble.textContent = event.text;
      break;
    case "transcript.user":
      if (!partialBubble) partialBubble = bubble("user", "");
      partialBubble.className = "bubble user final";
      partialBubble.textContent = event.text;
      partialBubble = null;
      break;
    case "reply.audio":
      play(event.data);
      break;
    case "transcript.agent":
      bubble(event.interrupted ? "agent interrupted" : "agent", event.text);
      break;
    case "tool.call":
      runTool(event);
      break;
    case "reply.done": {
      const results = toolResults;
      toolResults = [];
      if (event.status !== "interrupted") {  // the protocol: results of an interrupted reply are dropped
        Promise.all(results).then((all) => all.forEach((r) => ws && ws.send(JSON.stringify(r))));
      }
      break;
    }
    case "session.error":
      status(`error ${event.code}: ${event.message}`, true);
      break;
    case "voxgate.turn.latency":
      waterfall(event);
      break;
  }
}

async function open(resume) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/v1/ws?token=${encodeURIComponent(await token())}`);
  ws.onmessage = (message) => onEvent(JSON.parse(message.data));
  ws.onopen = () => {
    if (resume) {
      window.voxgateStats.resumes += 1;
      ws.send(JSON.stringify({ type: "session.resume", session_id: sessionId }));
      return;
    }
    const base = agents[$("agent").value] || {};
    const session = { ...base, system_prompt: $("prompt").value, output: { ...(base.output || {}), voice: $("voice").value } };
    session.voxgate = { turn_latency: true };  // [Voxgate] each turn's stages, drawn as a waterfall
    if (session.output.format) delete session.output.format;
    if (session.input && session.input.format) delete session.input.format;
    delete session.greeting;
    if ($("greeting").value.trim()) session.greeting = $("greeting").value.trim();
    ws.send(JSON.stringify({ type: "session.update", session }));
  };
  ws.onclose = (event) => {
    if (!wanted) return;
    if (event.code === 1008) { status(`refused: ${event.reason}`, true); disconnect(); return; }
    status("connection lost, resuming ...", true);
    setTimeout(() => open(Boolean(sessionId)).catch((err) => status(err.message, true)), 500);
  };
}

async function connect() {
  wanted = true;
  ctx = ctx || new AudioContext({ sampleRate: RATE });
  await ctx.resume();
  status("connecting ...");
  $("connect").textContent = "Disconnect";
  $("connect").className = "stop";
  await open(false);
}

function disconnect() {
  wanted = false;
  sessionId = null;
  flushPlayback();
  if (ws) ws.close();
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  if (micNode) micNode.disconnect();
  micStream = micNode = null;
  $("connect").textContent = "Connect";
  $("connect").className = "";
  status("disconnected");
}

$("connect").onclick = () => (wanted ? disconnect() : connect().catch((err) => status(err.message, true)));
$("agent").onchange = pickAgent;
loadVoices().then(loadAgents).catch((err) => status(`voices: ${err.message}`, true));
