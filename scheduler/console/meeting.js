// The meeting page of one VP (issue 16): the transcript grouped by speaker (live while the
// call runs), a speaker timeline (one lane per participant, from speakers.jsonl — the
// SPEAKER_CHANGE history), the chat, the recording with playback and a waveform, downloads
// of every artifact and the status history. Uses app.js's api/streamUrl/el/$/readableUrl.
// Server data reaches the page only through textContent and canvas drawing (fillText).
"use strict";

const LANE_HEIGHT = 26;
const LABEL_WIDTH = 130;
const LANE_COLORS = ["#2f6fb0", "#c2572b", "#3a8f4b", "#8a4fb0", "#b0902f", "#2fa3a3"];
const WAV_BYTES_PER_SECOND = 16000 * 2 * 2; // stereo PCM16 at 16 kHz (contract 1)

const meeting = {
  vpId: null,
  view: 0,
  source: null,
  artifacts: [],
  turns: [], // [{speaker, texts: [..]}]
  colors: new Map(), // speaker → palette index: the same colour in the transcript and timeline
  segments: [], // transcript segments, for the timeline's fallback and duration
  speakers: [], // [{t, speaker}]
  duration: 0,
  waveform: null, // ImageData of the drawn waveform (the playhead is drawn over it)
  recordingUrl: null,
  refreshing: false,
  refreshAgain: false, // a refresh asked for while one ran: run once more after it
  liveTimer: null,
};
const LIVE_REFRESH_MS = 10000; // while the call runs: timeline and downloads catch up

function colorIndex(speaker) {
  if (!meeting.colors.has(speaker))
    meeting.colors.set(speaker, meeting.colors.size % LANE_COLORS.length);
  return meeting.colors.get(speaker);
}

function artifactUrl(name) {
  const found = meeting.artifacts.find((a) => a.name === name);
  return found && found.url ? found.url : null;
}

async function fetchLines(name) {
  const url = artifactUrl(name);
  if (!url) return [];
  const response = await fetch(url);
  if (!response.ok) return [];
  const text = await response.text();
  const lines = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      lines.push(JSON.parse(line));
    } catch (_err) {
      // a line being written
    }
  }
  return lines;
}

// -- transcript grouped by speaker, and the chat --------------------------------------------
function addSegment(seg) {
  const speaker = seg.speaker || seg.channel || "?";
  meeting.segments.push(seg);
  const last = meeting.turns[meeting.turns.length - 1];
  const box = $("meeting-transcript");
  if (last && last.speaker === speaker) {
    last.texts.push(seg.text);
    last.body.textContent = last.texts.join(" ");
  } else {
    const turn = el("div", undefined, "turn");
    turn.dataset.testid = "turn";
    turn.dataset.color = String(colorIndex(speaker));
    const who = el("div", speaker, "speaker");
    who.dataset.testid = "turn-speaker";
    const body = el("p", seg.text);
    turn.append(who, body);
    box.append(turn);
    meeting.turns.push({ speaker, texts: [seg.text], body });
  }
  box.scrollTop = box.scrollHeight;
}

function addChat(msg) {
  const who = msg.direction === "out" ? `${msg.sender || "VP"} (VP)` : msg.sender || "?";
  const item = el("li");
  item.append(el("strong", who), document.createTextNode(`: ${msg.text}`));
  $("meeting-chat").append(item);
}

function noteEmpty() {
  if (!meeting.turns.length && !$("meeting-transcript").childElementCount) {
    $("meeting-transcript").append(el("p", "No transcript.", "muted empty-note"));
  }
  if (!$("meeting-chat").childElementCount) {
    $("meeting-chat").append(el("li", "No chat messages.", "muted empty-note"));
  }
}

function clearEmptyNotes() {
  for (const note of document.querySelectorAll("#meeting-panel .empty-note")) note.remove();
}

// Live: the transcript stream (the same one the transcript panel uses) replays the files
// from the start, then follows them until the VP ends; an expired token resumes after the
// last line.
async function followTranscript(vpId, view, after) {
  let url;
  try {
    const query = after ? `?after=${encodeURIComponent(after)}` : "";
    url = await streamUrl(`/v1/vps/${encodeURIComponent(vpId)}/transcript${query}`);
  } catch (_err) {
    noteEmpty();
    return;
  }
  if (view !== meeting.view) return;
  const source = new EventSource(url);
  meeting.source = source;
  let lastId = after;
  const seen = (event) => {
    if (event.lastEventId) lastId = event.lastEventId;
    clearEmptyNotes();
  };
  source.addEventListener("segment", (event) => {
    seen(event);
    addSegment(JSON.parse(event.data));
    refreshSoon();
  });
  source.addEventListener("chat", (event) => {
    seen(event);
    addChat(JSON.parse(event.data));
  });
  source.addEventListener("end", () => {
    source.close();
    if (meeting.source === source) meeting.source = null;
    noteEmpty();
    refreshMeeting();
  });
  const resume = (delay) => {
    source.close();
    if (meeting.source !== source) return;
    meeting.source = null;
    setTimeout(() => {
      if (view === meeting.view) followTranscript(vpId, view, lastId);
    }, delay);
  };
  source.addEventListener("expired", () => resume(0));
  source.addEventListener("error", () => {
    if (source.readyState === EventSource.CLOSED) resume(3000);
  });
}

// -- who spoke when ------------------------------------------------------------------------
// Turns from the SPEAKER_CHANGE history: each speaker holds the floor from their change to
// the next one (the last until the end of the recording). Without any (a platform that
// shows no speaker), the transcript's segments stand in.
function speakingSpans() {
  const spans = [];
  const changes = meeting.speakers.filter((c) => c.speaker);
  for (let i = 0; i < changes.length; i += 1) {
    const start = Number(changes[i].t) || 0;
    const end = i + 1 < changes.length ? Number(changes[i + 1].t) || 0 : meeting.duration;
    if (end > start) spans.push({ speaker: changes[i].speaker, start, end });
  }
  if (!spans.length) {
    for (const seg of meeting.segments) {
      const start = Number(seg.start) || 0;
      const end = Number(seg.end) || start;
      if (end > start) spans.push({ speaker: seg.speaker || seg.channel || "?", start, end });
    }
  }
  return spans;
}

function drawTimeline() {
  const canvas = $("meeting-timeline");
  const spans = speakingSpans();
  const lanes = [...new Set(spans.map((s) => s.speaker))];
  const legend = $("meeting-lanes");
  legend.replaceChildren();
  const height = Math.max(1, lanes.length) * LANE_HEIGHT + 22;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, height);
  const end = Math.max(meeting.duration, ...spans.map((s) => s.end), 1);
  const plot = canvas.width - LABEL_WIDTH - 10;
  const x = (t) => LABEL_WIDTH + (t / end) * plot;
  ctx.font = "12px system-ui, sans-serif";
  ctx.textBaseline = "middle";
  if (!lanes.length) {
    ctx.fillStyle = "#777777";
    ctx.fillText("No speaker changes recorded.", 8, LANE_HEIGHT / 2);
  }
  lanes.forEach((speaker, index) => {
    const top = index * LANE_HEIGHT;
    const color = LANE_COLORS[colorIndex(speaker)];
    ctx.fillStyle = index % 2 ? "#f4f6f8" : "#eceff3";
    ctx.fillRect(LABEL_WIDTH, top + 2, plot, LANE_HEIGHT - 4);
    ctx.fillStyle = "#1b1b1b";
    ctx.fillText(
      speaker.length > 18 ? `${speaker.slice(0, 17)}…` : speaker,
      6,
      top + LANE_HEIGHT / 2,
    );
    ctx.fillStyle = color;
    let seconds = 0;
    for (const span of spans.filter((s) => s.speaker === speaker)) {
      ctx.fillRect(
        x(span.start),
        top + 5,
        Math.max(2, x(span.end) - x(span.start)),
        LANE_HEIGHT - 10,
      );
      seconds += span.end - span.start;
    }
    const item = el("li");
    item.dataset.testid = "timeline-lane";
    const swatch = el("span", "", "swatch");
    swatch.dataset.color = String(colorIndex(speaker));
    item.append(
      swatch,
      el("span", speaker, "lane-name"),
      el("span", ` ${seconds.toFixed(1)} s`, "muted"),
    );
    legend.append(item);
  });
  // Time axis.
  const axis = Math.max(1, lanes.length) * LANE_HEIGHT + 10;
  ctx.fillStyle = "#555555";
  const step = niceStep(end);
  for (let t = 0; t <= end + 1e-9; t += step) {
    ctx.fillRect(x(t), axis - 6, 1, 4);
    ctx.fillText(formatTime(t), x(t) + 2, axis + 4);
  }
}

function niceStep(end) {
  for (const step of [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]) {
    if (end / step <= 10) return step;
  }
  return 7200;
}

function formatTime(seconds) {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

// -- the recording and its waveform -------------------------------------------------------
function wavSamples(buffer) {
  // RIFF/WAVE: find "fmt " (channels) and "data"; PCM16 little-endian.
  const view = new DataView(buffer);
  if (buffer.byteLength < 12 || view.getUint32(0, false) !== 0x52494646) return null;
  let offset = 12;
  let channels = 2;
  while (offset + 8 <= buffer.byteLength) {
    const id = view.getUint32(offset, false);
    const size = view.getUint32(offset + 4, true);
    if (id === 0x666d7420) channels = view.getUint16(offset + 10, true);
    if (id === 0x64617461) {
      const length = Math.min(size, buffer.byteLength - offset - 8);
      return { samples: new Int16Array(buffer, offset + 8, Math.floor(length / 2)), channels };
    }
    offset += 8 + size + (size % 2);
  }
  return null;
}

function drawWaveform(wav) {
  const canvas = $("meeting-waveform");
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  const frames = Math.floor(wav.samples.length / wav.channels);
  const perColumn = Math.max(1, Math.floor(frames / width));
  const colors = ["#2f6fb0", "#c2572b"]; // ch0 the meeting, ch1 the VP's own voice
  for (let channel = 0; channel < Math.min(2, wav.channels); channel += 1) {
    ctx.fillStyle = colors[channel];
    for (let column = 0; column < width; column += 1) {
      const first = column * perColumn;
      if (first >= frames) break;
      let low = 0;
      let high = 0;
      for (let f = first; f < Math.min(frames, first + perColumn); f += 1) {
        const v = wav.samples[f * wav.channels + channel];
        if (v < low) low = v;
        if (v > high) high = v;
      }
      const mid = height / 2;
      const top = mid - (high / 32768) * mid;
      const bottom = mid - (low / 32768) * mid;
      ctx.fillRect(column, top, 1, Math.max(1, bottom - top));
    }
  }
  ctx.fillStyle = "#cccccc";
  ctx.fillRect(0, height / 2, width, 1);
  meeting.waveform = ctx.getImageData(0, 0, width, height);
}

function drawPlayhead() {
  const canvas = $("meeting-waveform");
  const audio = $("meeting-audio");
  if (!meeting.waveform || !audio.duration) return;
  const ctx = canvas.getContext("2d");
  ctx.putImageData(meeting.waveform, 0, 0);
  ctx.fillStyle = "#1b1b1b";
  ctx.fillRect(
    Math.floor((audio.currentTime / audio.duration) * canvas.width),
    0,
    2,
    canvas.height,
  );
}

async function showRecording(view) {
  const url = artifactUrl("recording.wav");
  const recording = meeting.artifacts.find((a) => a.name === "recording.wav");
  if (!url || !recording || !recording.complete) return;
  const stable = url.split("?")[0];
  if (meeting.recordingUrl === stable) return; // already shown
  const response = await fetch(url);
  if (!response.ok || view !== meeting.view) return;
  const wav = wavSamples(await response.arrayBuffer());
  if (!wav || view !== meeting.view) return;
  meeting.recordingUrl = stable;
  const audio = $("meeting-audio");
  audio.src = url;
  audio.hidden = false;
  $("meeting-waveform").hidden = false;
  $("meeting-recording-note").textContent =
    `${formatTime(wav.samples.length / wav.channels / 16000)} · ch0 the meeting (blue), ch1 the VP's voice (orange)`;
  drawWaveform(wav);
}

// -- downloads and the status history -----------------------------------------------------
function formatSize(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

function renderDownloads() {
  const list = $("meeting-downloads");
  list.replaceChildren();
  if (!meeting.artifacts.length) list.append(el("li", "No artifacts yet.", "muted"));
  for (const artifact of meeting.artifacts) {
    const item = el("li");
    item.dataset.testid = "download";
    if (artifact.url) {
      const link = el("a", artifact.name);
      link.href = artifact.url;
      link.download = `${meeting.vpId}-${artifact.name}`;
      item.append(link);
    } else {
      item.append(el("span", artifact.name));
    }
    const note = artifact.complete ? "" : " · uploading";
    item.append(
      el("span", ` ${formatSize(artifact.size)} · ${artifact.content_type}${note}`, "muted"),
    );
    list.append(item);
  }
}

function renderHistory(vp) {
  $("meeting-status").textContent = `${vp.status}${vp.reason ? ` (${vp.reason})` : ""}`;
  $("meeting-status").className = `status ${vp.status}`;
  $("meeting-url").textContent = readableUrl(vp.meeting_url);
  const list = $("meeting-history");
  list.replaceChildren(
    ...(vp.history || []).map((h) => {
      const item = el("li");
      item.dataset.testid = "history-item";
      item.append(
        el("time", new Date(h.ts).toLocaleTimeString()),
        el("strong", ` ${h.status}`),
        el("span", `${h.reason ? ` ${h.reason}` : ""}${h.detail ? ` — ${h.detail}` : ""}`, "muted"),
      );
      return item;
    }),
  );
}

// -- open, refresh, close -----------------------------------------------------------------
async function refreshMeeting() {
  const vpId = meeting.vpId;
  const view = meeting.view;
  if (!vpId) return;
  if (meeting.refreshing) {
    meeting.refreshAgain = true;
    return;
  }
  meeting.refreshing = true;
  try {
    const path = `/v1/vps/${encodeURIComponent(vpId)}`;
    const [vp, listing] = await Promise.all([
      api("GET", path),
      api("GET", `${path}/artifacts`).catch(() => ({ artifacts: [] })),
    ]);
    if (view !== meeting.view) return;
    renderHistory(vp);
    meeting.artifacts = listing.artifacts || [];
    renderDownloads();
    meeting.speakers = await fetchLines("speakers.jsonl");
    const recording = meeting.artifacts.find((a) => a.name === "recording.wav");
    meeting.duration = recording ? Math.max(0, recording.size - 44) / WAV_BYTES_PER_SECOND : 0;
    if (view !== meeting.view) return;
    drawTimeline();
    await showRecording(view);
  } catch (err) {
    $("meeting-status").textContent = `Cannot load the meeting: ${err.message}`;
  } finally {
    meeting.refreshing = false;
    if (meeting.refreshAgain && view === meeting.view) {
      meeting.refreshAgain = false;
      refreshMeeting();
    }
  }
}

// New transcript lines mean the call is on: refresh the rest at most every 10 s.
function refreshSoon() {
  if (meeting.liveTimer) return;
  const view = meeting.view;
  meeting.liveTimer = setTimeout(() => {
    meeting.liveTimer = null;
    if (view === meeting.view) refreshMeeting();
  }, LIVE_REFRESH_MS);
}

async function openMeeting(vpId) {
  closeMeeting();
  meeting.vpId = vpId;
  $("meeting-panel").hidden = false;
  $("meeting-vp").textContent = vpId;
  await Promise.all([refreshMeeting(), followTranscript(vpId, meeting.view, "")]);
  $("meeting-panel").scrollIntoView();
}

function closeMeeting() {
  meeting.view += 1;
  if (meeting.source) meeting.source.close();
  if (meeting.liveTimer) clearTimeout(meeting.liveTimer);
  Object.assign(meeting, {
    vpId: null,
    source: null,
    artifacts: [],
    turns: [],
    colors: new Map(),
    segments: [],
    speakers: [],
    duration: 0,
    waveform: null,
    recordingUrl: null,
    refreshing: false,
    refreshAgain: false,
    liveTimer: null,
  });
  for (const id of [
    "meeting-transcript",
    "meeting-chat",
    "meeting-lanes",
    "meeting-downloads",
    "meeting-history",
  ]) {
    $(id).replaceChildren();
  }
  const audio = $("meeting-audio");
  audio.removeAttribute("src");
  audio.hidden = true;
  $("meeting-waveform").hidden = true;
  $("meeting-recording-note").textContent = "Not available yet.";
  $("meeting-panel").hidden = true;
}

// app.js calls this for every change of a VP it hears about (the live event stream).
function meetingVpChanged(vp) {
  if (vp.vp_id === meeting.vpId) refreshMeeting();
}

function seekTo(event, canvas, offset) {
  const audio = $("meeting-audio");
  if (!audio.duration) return;
  const rect = canvas.getBoundingClientRect();
  const scale = canvas.width / rect.width;
  const x = (event.clientX - rect.left) * scale - offset;
  const width = canvas.width - offset - (offset ? 10 : 0);
  audio.currentTime = Math.max(0, Math.min(1, x / width)) * audio.duration;
}

document.addEventListener("DOMContentLoaded", () => {
  $("meeting-close").addEventListener("click", closeMeeting);
  $("meeting-audio").addEventListener("timeupdate", drawPlayhead);
  $("meeting-waveform").addEventListener("click", (e) => seekTo(e, $("meeting-waveform"), 0));
  $("meeting-timeline").addEventListener("click", (e) =>
    seekTo(e, $("meeting-timeline"), LABEL_WIDTH),
  );
});
