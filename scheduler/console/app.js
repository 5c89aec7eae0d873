// The vp web console. Everything from the server (names, URLs, transcript and chat text) is
// data: it is put on the page with textContent / createElement, never innerHTML.
// Auth: a bearer JWT from the token field or a #token=… fragment, kept in sessionStorage.
// EventSource cannot send headers, so each stream first trades the bearer token for a
// short-lived stream token (POST /v1/stream-token) passed as ?token=.
"use strict";

const TERMINAL = new Set(["COMPLETED", "FAILED", "CANCELLED"]);
const state = {
  token: "",
  vps: new Map(),
  events: null,
  transcript: null,
  transcriptView: 0,
  reconnectTimer: null,
};

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setConnection(text) {
  $("connection").textContent = text;
}

async function api(method, path, body, extraHeaders) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(extraHeaders || {}) };
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (_err) {
    data = null;
  }
  if (!response.ok) {
    const error = new Error((data && data.message) || `HTTP ${response.status}`);
    error.status = response.status;
    error.fields = (data && data.fields) || [];
    throw error;
  }
  return data;
}

async function streamUrl(path) {
  const { token } = await api("POST", "/v1/stream-token");
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}token=${encodeURIComponent(token)}`;
}

// A stored URL for people: the store masks secret parameters as "***", which a URL keeps
// percent-encoded ("pwd=%2A%2A%2A"); show the path and parameters decoded.
function readableUrl(raw) {
  try {
    const url = new URL(raw);
    const params = [...url.searchParams].map(([k, v]) => (v === "" ? k : `${k}=${v}`));
    let path = url.pathname;
    try {
      path = decodeURIComponent(path);
    } catch (_err) {
      // keep it encoded
    }
    return `${url.origin}${path}${params.length ? `?${params.join("&")}` : ""}${url.hash}`;
  } catch (_err) {
    return String(raw);
  }
}

// -- the VP list -------------------------------------------------------------------------
function renderRow(vp) {
  const row = el("tr");
  row.dataset.vpId = vp.vp_id;
  row.dataset.testid = "vp-row";
  row.append(
    el("td", vp.vp_id),
    el("td", vp.platform),
    el("td", vp.name),
    el("td", readableUrl(vp.meeting_url), "meeting"),
    el("td", vp.join_at ? new Date(vp.join_at).toLocaleString() : "now"),
  );
  const status = el("td", vp.status, `status ${vp.status}`);
  status.dataset.testid = "vp-status";
  row.append(status, el("td", vp.reason || ""), el("td", vp.detail || ""));

  const actions = el("td");
  const stop = el("button", vp.status === "SCHEDULED" ? "Cancel" : "Stop");
  stop.type = "button";
  stop.dataset.testid = "vp-stop";
  stop.disabled = TERMINAL.has(vp.status);
  stop.addEventListener("click", () => cancelVp(vp.vp_id, stop));
  const show = el("button", "Transcript");
  show.type = "button";
  show.dataset.testid = "vp-transcript";
  show.addEventListener("click", () => openTranscript(vp.vp_id));
  const meeting = el("button", "Meeting");
  meeting.type = "button";
  meeting.dataset.testid = "vp-meeting";
  meeting.addEventListener("click", () => openMeeting(vp.vp_id)); // meeting.js
  actions.append(stop, " ", show, " ", meeting);
  row.append(actions);
  return row;
}

function renderList() {
  const rows = $("vp-rows");
  const sorted = [...state.vps.values()].sort((a, b) =>
    a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : 0,
  );
  rows.replaceChildren(...sorted.map(renderRow));
  $("empty").hidden = sorted.length > 0;
}

function upsert(vp) {
  state.vps.set(vp.vp_id, vp);
  renderList();
  meetingVpChanged(vp); // meeting.js
}

async function cancelVp(vpId, button) {
  button.disabled = true;
  try {
    upsert(await api("DELETE", `/v1/vps/${encodeURIComponent(vpId)}`));
  } catch (err) {
    button.disabled = false;
    $("launch-error").textContent = `Stop failed: ${err.message}`;
  }
}

// -- live updates (server-sent events; the browser never polls) ----------------------------
function scheduleReconnect() {
  if (state.reconnectTimer) return;
  state.reconnectTimer = setTimeout(() => {
    state.reconnectTimer = null;
    connectEvents();
  }, 3000);
}

async function connectEvents() {
  if (state.events) state.events.close();
  state.events = null;
  setConnection("connecting…");
  let url;
  try {
    url = await streamUrl("/v1/events");
  } catch (err) {
    setConnection(err.status === 401 ? "token rejected" : `offline: ${err.message}`);
    if (err.status !== 401) scheduleReconnect();
    return;
  }
  const source = new EventSource(url);
  state.events = source;
  source.addEventListener("open", () => setConnection("live"));
  source.addEventListener("snapshot", (event) => {
    state.vps = new Map(JSON.parse(event.data).vps.map((vp) => [vp.vp_id, vp]));
    renderList();
    setConnection("live");
  });
  source.addEventListener("vp", (event) => upsert(JSON.parse(event.data)));
  source.addEventListener("expired", () => {
    // The stream token ran out: the server ended the stream. A new token, a new snapshot.
    source.close();
    if (state.events === source) connectEvents();
  });
  source.addEventListener("error", () => {
    // EventSource retries by itself; once it gives up (e.g. the stream token expired),
    // fetch a fresh token and reconnect.
    if (source.readyState === EventSource.CLOSED && state.events === source) {
      setConnection("reconnecting…");
      scheduleReconnect();
    }
  });
}

// -- the live transcript ------------------------------------------------------------------
function transcriptLine(text, className) {
  const list = $("transcript");
  list.append(el("li", text, className));
  list.scrollTop = list.scrollHeight;
}

async function openTranscript(vpId) {
  if (state.transcript) state.transcript.close();
  state.transcript = null;
  $("transcript-panel").hidden = false;
  $("transcript-vp").textContent = vpId;
  $("transcript").replaceChildren();
  state.transcriptView += 1; // streams of an earlier view stop resuming
  await streamTranscript(vpId, state.transcriptView, "", 0);
}

// One EventSource per stream token; when its token expires (an `expired` event) or it drops
// for good, the next one resumes after the last event seen, so no line is lost or repeated.
async function streamTranscript(vpId, view, after, failures) {
  let url;
  try {
    const query = after ? `?after=${encodeURIComponent(after)}` : "";
    url = await streamUrl(`/v1/vps/${encodeURIComponent(vpId)}/transcript${query}`);
  } catch (err) {
    if (err.status && err.status < 500) {
      transcriptLine(`Cannot open the transcript: ${err.message}`, "end");
      return;
    }
    const delay = Math.min(30000, 2000 * 2 ** failures);
    setTimeout(() => {
      if (view === state.transcriptView) streamTranscript(vpId, view, after, failures + 1);
    }, delay);
    return;
  }
  if (view !== state.transcriptView) return; // another transcript was opened meanwhile
  const source = new EventSource(url);
  state.transcript = source;
  let lastId = after;
  const seen = (event) => {
    if (event.lastEventId) lastId = event.lastEventId;
  };
  const resume = (delay) => {
    source.close();
    if (state.transcript !== source) return;
    state.transcript = null;
    setTimeout(() => {
      if (view === state.transcriptView) streamTranscript(vpId, view, lastId, 0);
    }, delay);
  };
  source.addEventListener("segment", (event) => {
    seen(event);
    const seg = JSON.parse(event.data);
    transcriptLine(`${seg.speaker || seg.channel || "?"}: ${seg.text}`, "segment");
  });
  source.addEventListener("chat", (event) => {
    seen(event);
    const msg = JSON.parse(event.data);
    const who = msg.direction === "out" ? "(VP)" : msg.sender || "?";
    transcriptLine(`[chat] ${who}: ${msg.text}`, "chat");
  });
  source.addEventListener("end", (event) => {
    const vp = JSON.parse(event.data);
    transcriptLine(`ended: ${vp.status}${vp.reason ? ` (${vp.reason})` : ""}`, "end");
    source.close();
    if (state.transcript === source) state.transcript = null;
  });
  source.addEventListener("expired", () => resume(0));
  source.addEventListener("error", () => {
    // EventSource retries by itself (resending Last-Event-ID); once it gives up, e.g. on a
    // 401 for an expired token after a drop, a fresh token resumes after the last line.
    if (source.readyState === EventSource.CLOSED) resume(3000);
  });
}

// -- launch -------------------------------------------------------------------------------
function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

let pendingKey = null; // one key per distinct submission: a double click starts one VP

async function launch(event) {
  event.preventDefault();
  const error = $("launch-error");
  error.textContent = "";
  const body = { meeting_url: $("meeting_url").value.trim() };
  const platform = $("platform").value;
  const name = $("name").value.trim();
  const passcode = $("passcode").value;
  const joinAt = $("join_at").value;
  if (platform) body.platform = platform;
  if (name) body.name = name;
  if (passcode) body.passcode = passcode;
  if (joinAt) body.join_at = new Date(joinAt).toISOString(); // local time → UTC with offset
  const fingerprint = JSON.stringify(body);
  if (!pendingKey || pendingKey.fingerprint !== fingerprint) {
    pendingKey = { fingerprint, key: newIdempotencyKey() };
  }
  const button = $("launch");
  button.disabled = true;
  try {
    upsert(await api("POST", "/v1/vps", body, { "Idempotency-Key": pendingKey.key }));
    pendingKey = null;
    $("passcode").value = "";
  } catch (err) {
    const lines = [err.message, ...err.fields.map((f) => `${f.field}: ${f.message}`)];
    error.textContent = lines.join("\n");
    if (err.status && err.status < 500) pendingKey = null;
  } finally {
    button.disabled = false;
  }
}

// -- start --------------------------------------------------------------------------------
function useToken(token) {
  state.token = token.trim();
  if (!state.token) return;
  sessionStorage.setItem("vp-token", state.token);
  connectEvents();
}

function init() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const fromFragment = fragment.get("token");
  if (fromFragment) history.replaceState(null, "", location.pathname + location.search);
  const token = fromFragment || sessionStorage.getItem("vp-token") || "";
  $("token").value = token;
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useToken($("token").value);
  });
  $("launch-form").addEventListener("submit", launch);
  $("transcript-close").addEventListener("click", () => {
    state.transcriptView += 1;
    if (state.transcript) state.transcript.close();
    state.transcript = null;
    $("transcript-panel").hidden = true;
  });
  if (token) useToken(token);
}

document.addEventListener("DOMContentLoaded", init);
