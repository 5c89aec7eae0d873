/*
 * vp in-page audio capture — a Playwright init script (context.add_init_script), run before any
 * page script. It captures what the meeting page PLAYS, mixes it once, converts it to 16 kHz mono
 * PCM16 and ships fixed-size frames to Python (over a loopback WebSocket, else the Playwright
 * binding `__vpAudio`: see Transport below).
 * It also gives the VP an outgoing voice: getUserMedia({audio}) returns a track the VP controls
 * (`window.__vpVoice.play(base64Pcm16Mono16k)`), so the fake-device beep never reaches a meeting.
 *
 * The script is one closure kept in parts, joined in name order by vp/capture.py
 * (capture_script()) before it is installed; each part is a fragment of main(), not a module:
 *   00-prelude.js       this comment, config, natives (taken once, before page scripts), state
 *   10-sources.js       RTCPeerConnection tracks, media elements, WebAudio taps, reconcile()
 *   20-transport.js     the capture AudioContext + worklet, the frame queue, WebSocket / binding
 *   30-voice.js         the VP's own voice
 *   90-housekeeping.js  start, the 1 s tick, stats(); closes main() and the script
 *
 * Sources:
 *   - remote audio tracks arriving on RTCPeerConnection 'track' events (constructor wrapped;
 *     prototype, statics, subclassing and `instanceof` keep working);
 *   - MediaStreams given to media elements (HTMLMediaElement.prototype.srcObject setter), while
 *     some element holding the track is audible (not muted, volume > 0, not paused);
 *   - WebAudio: whatever a page AudioContext connects to its `destination` is also connected to a
 *     per-context MediaStreamAudioDestinationNode "tap" (AudioNode.prototype.connect/disconnect
 *     patched); the tap counts as one source while anything feeds the destination.
 *
 * Mixed once:
 *   - direct tracks (RTCPeerConnection + elements) are deduplicated by track id;
 *   - dedupe heuristic for WebAudio: we record every page connect() edge. A track is "routed"
 *     when a MediaStreamAudioSourceNode (its `mediaStream`), a MediaElementAudioSourceNode (its
 *     element's srcObject) or a MediaStreamTrackAudioSourceNode carrying it can reach the page
 *     context's `destination` through recorded edges (AudioParam modulation edges do not count).
 *     A routed track is heard through that context's tap, so it is NOT captured directly. Analysis
 *     only graphs (level meters that never reach `destination`) leave the track captured directly.
 *     Limits: disconnect(outputIndex) forgets all edges of the node; a page that clones a track
 *     and plays both copies is counted twice (different ids); a page that decodes a remote track
 *     itself (MediaStreamTrackProcessor/WASM) and plays the result through WebAudio is counted
 *     twice too: a platform driver that knows this sets trackFilter: () => false (tap only).
 *
 * Chromium quirk: remote WebRTC audio reaches WebAudio only while a media element plays it, so
 * every RTCPeerConnection audio track we accept is attached to a private muted, playing <audio>
 * (detached from the DOM), released when the track ends.
 *
 * Transport (Python ← page), one of two, chosen per document:
 *   - WebSocket (preferred, when config `wsUrl` is set): binary messages to the VP process's own
 *     loopback server (vp/capture.py FrameServer), each one frame:
 *       u32 seq | f64 pageTsMs | u16 sources | u16 0 | f32 peak | f32 rms | u32 droppedTotal |
 *       PCM16LE bytes            (little-endian, 28-byte header)
 *     Python answers every frame with a text ack (its seq): that is the acknowledgement. No
 *     text encoding, no CDP, no Playwright driver on the audio path: the socket is opened by a
 *     private SharedWorker (a relay; frames reach it as transferred ArrayBuffers over a
 *     MessagePort) because Playwright reports every frame of a page's or dedicated worker's
 *     WebSocket over CDP (base64, through the driver to Python) and shared workers it does not
 *     instrument. Where the relay cannot run (opaque origin, CSP worker-src, no SharedWorker) or
 *     never opens, the page opens the socket itself.
 *   - Playwright binding (fallback: no wsUrl, or the socket could not be opened / was lost and
 *     could not be reopened): one call per frame
 *       __vpAudio(base64Pcm16, seq, pageTsMs, sources, peak, rms, droppedTotal, instanceId)
 *     whose promise resolves when Python's handler has returned: that is the acknowledgement.
 * Overflow policy (both transports): at most `maxInFlight` (4) un-acknowledged frames; further
 * frames wait in a queue of at most `maxQueued` (10 = 1 s) frames; when the queue is full the
 * OLDEST queued frame is dropped (fresh audio wins, latency stays bounded) and counted; the
 * cumulative drop count rides on every frame, and seq numbers show the gaps. A frame
 * unacknowledged for 5 s frees its slot. Without any transport (Python never attached) frames
 * are dropped and counted; the page is unaffected.
 *
 * Config: window.__vpCaptureConfig, set by an earlier init script (all optional):
 *   frameMs (100), maxInFlight (4), maxQueued (10), allFrames (false: top frame only),
 *   wsUrl (the frame server's ws://127.0.0.1:PORT/TOKEN; read once, then removed from the
 *     config object so page scripts that run later do not see it),
 *   voice (true: override getUserMedia audio),
 *   trackFilter({id, label, streamIds, origin: 'pc'|'element'}) -> boolean: read when a track is
 *     first seen; false = never capture it (e.g. Teams: keep only the `mainAudio` stream).
 * Debug: window[Symbol.for('vp.capture.v1')].stats().
 */
(() => {
  'use strict';
  const KEY = Symbol.for('vp.capture.v1');
  let cfg;
  try {
    if (window[KEY]) return; // idempotent: installed twice, or once per VP context
    cfg = (typeof window.__vpCaptureConfig === 'object' && window.__vpCaptureConfig) || {};
    let top = true;
    try {
      top = window.top === window;
    } catch (e) {
      top = false;
    }
    if (!top && !cfg.allFrames) return;
  } catch (e) {
    return;
  }
  let wsUrl = null;
  try {
    if (typeof cfg.wsUrl === 'string' && /^ws:\/\/127\.0\.0\.1:\d+\//.test(cfg.wsUrl)) wsUrl = cfg.wsUrl;
    delete cfg.wsUrl;
  } catch (e) {}

  const W = window;
  const api = { stats: () => ({}) };
  try {
    Object.defineProperty(W, KEY, { value: api, configurable: false, enumerable: false });
    main();
  } catch (e) {
    try {
      console.debug('[vp] capture init failed', e);
    } catch (_) {}
  }

  function main() {
    const AC = W.AudioContext || W.webkitAudioContext;
    const MS = W.MediaStream;
    if (!AC || !W.AudioNode || !MS) return;

    // ---- natives, taken before any page script can patch them -------------------------------
    const AN = W.AudioNode.prototype;
    const nConnect = AN.connect;
    const nDisconnect = AN.disconnect;
    const nCreateMSD = AC.prototype.createMediaStreamDestination;
    const nCreateMSS = AC.prototype.createMediaStreamSource;
    const nCreateTrackSrc = AC.prototype.createMediaStreamTrackSource;
    const nCreateGain = W.BaseAudioContext.prototype.createGain;
    const nAddListener = W.EventTarget.prototype.addEventListener;
    const MSASN = W.MediaStreamAudioSourceNode;
    const MEASN = W.MediaElementAudioSourceNode;
    const AudioNodeC = W.AudioNode;
    const HME = W.HTMLMediaElement.prototype;
    const srcObjDesc = Object.getOwnPropertyDescriptor(HME, 'srcObject');
    const nGetSrc = srcObjDesc.get;
    const nSetSrc = srcObjDesc.set;
    const nPlay = HME.play;
    const nGetTracks = MS.prototype.getAudioTracks;
    const nClone = W.MediaStreamTrack.prototype.clone;
    const now = Date.now;
    const nSetInterval = W.setInterval.bind(W);
    const fromCharCode = String.fromCharCode;
    const nBtoa = W.btoa.bind(W);
    const nAtob = W.atob.bind(W);
    const toB64 = Uint8Array.prototype.toBase64;
    const fromB64 = Uint8Array.fromBase64;
    const WR = W.WeakRef;
    const WS = W.WebSocket;
    const nWsSend = WS && WS.prototype.send;
    const nWsClose = WS && WS.prototype.close;
    const nSharedWorker = W.SharedWorker;
    const nBlob = W.Blob;
    const nCreateUrl = W.URL && W.URL.createObjectURL;
    const nRevokeUrl = W.URL && W.URL.revokeObjectURL;
    const nPortPost = W.MessagePort && W.MessagePort.prototype.postMessage;
    const nPortClose = W.MessagePort && W.MessagePort.prototype.close;
    const nSetTimeout = W.setTimeout.bind(W);
    const AudioCtor = W.Audio;
    const AWN = W.AudioWorkletNode;
    const microtask = W.queueMicrotask.bind(W);
    const construct = Reflect.construct;

    const num = (v, d, lo, hi) => (typeof v === 'number' && v >= lo && v <= hi ? v : d);
    const frameMs = num(cfg.frameMs, 100, 10, 1000);
    const frameSamples = Math.round((16000 * frameMs) / 1000);
    const maxInFlight = Math.floor(num(cfg.maxInFlight, 4, 1, 64));
    const maxQueued = Math.floor(num(cfg.maxQueued, 10, 1, 600));
    const ACK_TIMEOUT_MS = 5000;
    const BINDING = '__vpAudio';
    const inst = Math.random().toString(36).slice(2, 10) + now().toString(36);

    // ---- state --------------------------------------------------------------------------------
    const internalCtx = new WeakSet(); // our own contexts: never tapped
    // The VP's own outgoing tracks (objects, not ids: a loopback peer's remote track may reuse the
    // sender's id from the SDP msid): never captured.
    const voiceTracks = new WeakSet();
    const tracks = new Map(); // id -> {track, pc, accepted, stream, sink}
    const elems = new Map(); // WeakRef(el) -> true, elements given a MediaStream
    const elemRefs = new WeakMap(); // el -> its WeakRef
    const ctxs = new Set(); // page AudioContexts with a tap
    const info = new WeakMap(); // page ctx -> {tap, feeders:Set, srcNodes:Set, key}
    const edges = new WeakMap(); // AudioNode -> Set<AudioNode>
    const trackOfNode = new WeakMap(); // MediaStreamTrackAudioSourceNode -> track
    const active = new Map(); // source key -> capture MediaStreamAudioSourceNode
    let cap = null;
    let sourceCount = 0;
    let scheduled = false;
    let ctxSeq = 0;

