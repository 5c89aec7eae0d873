/*
 * vp in-page audio capture — a Playwright init script (context.add_init_script), run before any
 * page script. It captures what the meeting page PLAYS, mixes it once, converts it to 16 kHz mono
 * PCM16 and ships fixed-size frames to Python through the Playwright binding `__vpAudio`.
 * It also gives the VP an outgoing voice: getUserMedia({audio}) returns a track the VP controls
 * (`window.__vpVoice.play(base64Pcm16Mono16k)`), so the fake-device beep never reaches a meeting.
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
    const BlobC = W.Blob;
    const createURL = URL.createObjectURL;
    const revokeURL = URL.revokeObjectURL;
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

    // ---- sources ------------------------------------------------------------------------------
    function schedule() {
      if (scheduled) return;
      scheduled = true;
      microtask(() => {
        scheduled = false;
        try {
          reconcile();
        } catch (e) {}
      });
    }

    function accept(track, streamIds, origin) {
      const f = W.__vpCaptureConfig && W.__vpCaptureConfig.trackFilter;
      if (typeof f !== 'function') return true;
      try {
        return !!f({ id: track.id, label: track.label, streamIds, origin });
      } catch (e) {
        return true;
      }
    }

    function entryFor(track, streamIds, origin) {
      let e = tracks.get(track.id);
      if (!e) {
        e = { track, pc: false, accepted: accept(track, streamIds, origin), stream: null, sink: null };
        tracks.set(track.id, e);
        try {
          nAddListener.call(track, 'ended', schedule);
        } catch (_) {}
      }
      return e;
    }

    function onRemoteTrack(ev) {
      try {
        const t = ev.track;
        if (!t || t.kind !== 'audio' || voiceTracks.has(t)) return;
        const e = entryFor(t, Array.from(ev.streams || [], (s) => s.id), 'pc');
        e.pc = true;
        if (e.accepted && !e.sink) {
          // Chromium: remote audio is silent in WebAudio unless a media element plays it.
          const a = new AudioCtor();
          a.muted = true;
          nSetSrc.call(a, new MS([t]));
          e.sink = a;
          const p = nPlay.call(a);
          if (p && p.catch) p.catch(() => {});
        }
        schedule();
      } catch (_) {}
    }

    function dropTrack(id, e) {
      tracks.delete(id);
      if (e.sink) {
        try {
          e.sink.pause();
          nSetSrc.call(e.sink, null);
        } catch (_) {}
        e.sink = null;
      }
    }

    function elementTracks() {
      // Audio track ids held by audible elements; registers newly seen tracks.
      const audible = new Set();
      for (const ref of elems.keys()) {
        const el = ref.deref();
        const s = el && nGetSrc.call(el);
        if (!el || !(s instanceof MS)) {
          elems.delete(ref);
          continue;
        }
        const playing = !el.muted && el.volume > 0 && !el.paused;
        for (const t of nGetTracks.call(s)) {
          if (voiceTracks.has(t) || t.readyState === 'ended') continue;
          const e = entryFor(t, [s.id], 'element');
          e.inElement = true;
          if (playing) audible.add(t.id);
        }
      }
      return audible;
    }

    function reaches(start, dest) {
      const seen = new Set([start]);
      const todo = [start];
      let steps = 0;
      while (todo.length && steps++ < 10000) {
        const out = edges.get(todo.pop());
        if (!out) continue;
        for (const n of out) {
          if (n === dest) return true;
          if (!seen.has(n)) {
            seen.add(n);
            todo.push(n);
          }
        }
      }
      return false;
    }

    function routedTracks() {
      const routed = new Set();
      for (const ctx of ctxs) {
        const ci = info.get(ctx);
        if (!ci.feeders.size) continue;
        for (const n of ci.srcNodes) {
          if (!reaches(n, ctx.destination)) continue;
          let ts = [];
          if (MSASN && n instanceof MSASN) ts = nGetTracks.call(n.mediaStream);
          else if (MEASN && n instanceof MEASN) {
            const s = nGetSrc.call(n.mediaElement);
            if (s instanceof MS) ts = nGetTracks.call(s);
          } else if (trackOfNode.has(n)) ts = [trackOfNode.get(n)];
          for (const t of ts) routed.add(t.id);
        }
      }
      return routed;
    }

    function reconcile() {
      for (const e of tracks.values()) e.inElement = false;
      const audible = elementTracks();
      const routed = routedTracks();
      const want = new Map();
      for (const [id, e] of tracks) {
        if (e.track.readyState === 'ended' || (!e.pc && !e.inElement)) {
          dropTrack(id, e);
          continue;
        }
        if (!e.accepted || routed.has(id) || !(e.pc || audible.has(id))) continue;
        if (!e.stream) e.stream = new MS([e.track]);
        want.set('t:' + id, e.stream);
      }
      for (const ctx of ctxs) {
        const ci = info.get(ctx);
        if (ctx.state === 'closed') {
          ctxs.delete(ctx);
          continue;
        }
        if (ci.feeders.size) want.set(ci.key, ci.tap.stream);
      }
      for (const [k, node] of active) {
        if (!want.has(k)) {
          try {
            nDisconnect.call(node);
          } catch (_) {}
          active.delete(k);
        }
      }
      for (const [k, stream] of want) {
        if (active.has(k)) continue;
        const c = ensureCapture();
        if (!c) break;
        const node = nCreateMSS.call(c.ctx, stream);
        nConnect.call(node, c.mixer);
        active.set(k, node);
      }
      sourceCount = active.size;
    }

    // ---- RTCPeerConnection --------------------------------------------------------------------
    const PCs = [];
    for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection']) {
      const Orig = W[name];
      if (typeof Orig !== 'function' || PCs.includes(Orig)) continue;
      PCs.push(Orig);
      const Wrapped = function RTCPeerConnection(...args) {
        if (!new.target) return Orig.apply(this, args); // throws the native TypeError
        const pc = construct(Orig, args, new.target);
        try {
          nAddListener.call(pc, 'track', onRemoteTrack);
        } catch (_) {}
        return pc;
      };
      Wrapped.prototype = Orig.prototype;
      Object.setPrototypeOf(Wrapped, Orig); // statics, e.g. generateCertificate
      Object.defineProperty(Orig.prototype, 'constructor', {
        value: Wrapped,
        writable: true,
        configurable: true,
        enumerable: false,
      });
      for (const alias of ['RTCPeerConnection', 'webkitRTCPeerConnection']) {
        if (W[alias] === Orig) {
          Object.defineProperty(W, alias, {
            value: Wrapped,
            writable: true,
            configurable: true,
            enumerable: false,
          });
        }
      }
    }

    // ---- media elements -----------------------------------------------------------------------
    Object.defineProperty(HME, 'srcObject', {
      configurable: true,
      enumerable: srcObjDesc.enumerable,
      get: nGetSrc,
      set: function srcObject(v) {
        nSetSrc.call(this, v);
        try {
          if (v instanceof MS && !elemRefs.has(this)) {
            const ref = new WR(this);
            elemRefs.set(this, ref);
            for (const type of ['play', 'pause', 'volumechange', 'emptied']) {
              nAddListener.call(this, type, schedule);
            }
          }
          const ref = elemRefs.get(this);
          if (ref && v instanceof MS) elems.set(ref, true);
          schedule();
        } catch (_) {}
      },
    });

    // ---- WebAudio -----------------------------------------------------------------------------
    function ctxInfo(ctx) {
      let ci = info.get(ctx);
      if (!ci) {
        const tap = nCreateMSD.call(ctx);
        ci = { tap, feeders: new Set(), srcNodes: new Set(), key: 'c:' + ++ctxSeq };
        info.set(ctx, ci);
        ctxs.add(ctx);
        try {
          nAddListener.call(ctx, 'statechange', schedule);
        } catch (_) {}
      }
      return ci;
    }

    function pageCtx(node) {
      const ctx = node.context;
      return ctx instanceof AC && !internalCtx.has(ctx) ? ctx : null;
    }

    AN.connect = function connect(target, ...rest) {
      const r = nConnect.call(this, target, ...rest);
      try {
        const ctx = target instanceof AudioNodeC && pageCtx(this);
        if (ctx) {
          let out = edges.get(this);
          if (!out) edges.set(this, (out = new Set()));
          out.add(target);
          const ci = ctxInfo(ctx);
          if ((MSASN && this instanceof MSASN) || (MEASN && this instanceof MEASN) || trackOfNode.has(this)) {
            ci.srcNodes.add(this);
          }
          if (target === ctx.destination) {
            nConnect.call(this, ci.tap, rest.length ? rest[0] : 0);
            ci.feeders.add(this);
          }
          schedule();
        }
      } catch (_) {}
      return r;
    };

    AN.disconnect = function disconnect(...args) {
      const r = nDisconnect.apply(this, args);
      try {
        const ctx = pageCtx(this);
        const ci = ctx && info.get(ctx);
        if (ctx) {
          const target = args[0];
          const out = edges.get(this);
          if (target instanceof AudioNodeC) {
            if (out) out.delete(target);
            if (ci && target === ctx.destination) {
              try {
                nDisconnect.call(this, ci.tap, ...(args.length > 1 ? [args[1], 0] : []));
              } catch (_) {}
              ci.feeders.delete(this);
            }
          } else if (args.length === 0 || typeof target === 'number') {
            if (out) out.clear();
            if (ci) ci.feeders.delete(this);
          }
          schedule();
        }
      } catch (_) {}
      return r;
    };

    const nCreateTrackSrc = AC.prototype.createMediaStreamTrackSource;
    if (typeof nCreateTrackSrc === 'function') {
      AC.prototype.createMediaStreamTrackSource = function createMediaStreamTrackSource(track) {
        const n = nCreateTrackSrc.call(this, track);
        try {
          trackOfNode.set(n, track);
        } catch (_) {}
        return n;
      };
    }

    // ---- capture context, worklet, transport --------------------------------------------------
    const WORKLET = `
class VpCapture extends AudioWorkletProcessor {
  constructor(o) {
    super();
    this.n = o.processorOptions.frameSamples;
    this.buf = new Int16Array(this.n); this.i = 0; this.peak = 0; this.sq = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    const len = ch ? ch.length : 128, n = this.n;
    let buf = this.buf, i = this.i, peak = this.peak, sq = this.sq;
    for (let k = 0; k < len; k++) {
      let v = ch ? ch[k] : 0;
      if (v !== v) v = 0; else if (v > 1) v = 1; else if (v < -1) v = -1;
      const a = v < 0 ? -v : v;
      if (a > peak) peak = a;
      sq += v * v;
      buf[i++] = v < 0 ? v * 32768 : v * 32767;
      if (i === n) {
        this.port.postMessage({ pcm: buf.buffer, peak, rms: Math.sqrt(sq / n), ts: Date.now() }, [buf.buffer]);
        buf = this.buf = new Int16Array(n); i = 0; peak = 0; sq = 0;
      }
    }
    this.i = i; this.peak = peak; this.sq = sq;
    return true;
  }
}
registerProcessor('vp-capture', VpCapture);
`;

    function ensureCapture() {
      if (cap) return cap;
      const ctx = new AC({ sampleRate: 16000, latencyHint: 'playback' });
      internalCtx.add(ctx);
      const mixer = nCreateGain.call(ctx);
      mixer.channelCount = 1; // sources are down-mixed to mono here
      mixer.channelCountMode = 'explicit';
      mixer.channelInterpretation = 'speakers';
      cap = { ctx, mixer, mode: 'starting' };
      const useScriptProcessor = () => {
        // Insecure origins have no audioWorklet: main-thread ScriptProcessorNode instead.
        const sp = ctx.createScriptProcessor(1024, 1, 1);
        let buf = new Int16Array(frameSamples);
        let i = 0;
        let peak = 0;
        let sq = 0;
        sp.onaudioprocess = (ev) => {
          const ch = ev.inputBuffer.getChannelData(0);
          for (let k = 0; k < ch.length; k++) {
            let v = ch[k];
            if (v !== v) v = 0;
            else if (v > 1) v = 1;
            else if (v < -1) v = -1;
            const a = v < 0 ? -v : v;
            if (a > peak) peak = a;
            sq += v * v;
            buf[i++] = v < 0 ? v * 32768 : v * 32767;
            if (i === frameSamples) {
              onFrame({ pcm: buf.buffer, peak, rms: Math.sqrt(sq / frameSamples), ts: now() });
              buf = new Int16Array(frameSamples);
              i = 0;
              peak = 0;
              sq = 0;
            }
          }
        };
        nConnect.call(mixer, sp);
        nConnect.call(sp, ctx.destination);
        cap.mode = 'script-processor';
      };
      if (ctx.audioWorklet && typeof AWN === 'function') {
        const url = createURL(new BlobC([WORKLET], { type: 'text/javascript' }));
        ctx.audioWorklet
          .addModule(url)
          .then(() => {
            const node = new AWN(ctx, 'vp-capture', {
              numberOfInputs: 1,
              numberOfOutputs: 1,
              outputChannelCount: [1],
              channelCount: 1,
              channelCountMode: 'explicit',
              processorOptions: { frameSamples },
            });
            node.port.onmessage = (ev) => onFrame(ev.data);
            nConnect.call(mixer, node);
            nConnect.call(node, ctx.destination); // keeps the node pulled; it outputs silence
            cap.mode = 'worklet';
          })
          .catch(() => {
            try {
              useScriptProcessor();
            } catch (_) {}
          })
          .finally(() => revokeURL(url));
      } else {
        useScriptProcessor();
      }
      return cap;
    }

    let seq = 0;
    let dropped = 0;
    let sent = 0;
    let acked = 0;
    let timedOut = 0;
    const queue = [];
    const inflight = new Map(); // seq -> sent at (ms)

    // WebSocket transport state: 'off' (no wsUrl / given up), 'connecting', 'open'.
    let ws = null;
    let wsState = wsUrl && typeof WS === 'function' ? 'connecting' : 'off';
    let wsFailures = 0;
    let wsEverOpen = false;
    const WS_MAX_FAILURES = 3;
    const HEADER = 28;

    // The relay worker: page -> port: the socket URL (string, once), frames (ArrayBuffer,
    // transferred), 0 = close; port -> page: 1 = open, ack text, 0 = closed. The URL (it holds
    // the capture token) travels by message, never in the worker's source.
    const RELAY_SRC =
      "'use strict';onconnect=(c)=>{const p=c.ports[0];let ws=null;" +
      "p.onmessage=(e)=>{const d=e.data;" +
      "if(typeof d==='string'&&!ws){ws=new WebSocket(d);ws.binaryType='arraybuffer';" +
      'ws.onopen=()=>p.postMessage(1);' +
      "ws.onmessage=(m)=>p.postMessage(''+m.data);" +
      'ws.onclose=()=>{p.postMessage(0);close();};}' +
      'else if(d===0){if(ws)ws.close();close();}' +
      'else if(ws&&ws.readyState===1)ws.send(d);};};';
    let relayBroken = !(nSharedWorker && nBlob && nCreateUrl && nRevokeUrl && nPortPost);

    function relaySocket(url) {
      const blobUrl = nCreateUrl.call(W.URL, new nBlob([RELAY_SRC], { type: 'text/javascript' }));
      let worker;
      try {
        worker = new nSharedWorker(blobUrl);
      } finally {
        nRevokeUrl.call(W.URL, blobUrl);
      }
      const port = worker.port;
      const sock = {
        relay: true,
        opened: false,
        ended: false,
        onopen: null,
        onmessage: null,
        onclose: null,
      };
      const ended = () => {
        if (sock.ended) return;
        sock.ended = true;
        if (!sock.opened) relayBroken = true; // next time the page opens the socket itself
        try {
          nPortClose.call(port);
        } catch (_) {}
        if (sock.onclose) sock.onclose();
      };
      worker.onerror = ended;
      port.onmessage = (ev) => {
        const d = ev.data;
        if (d === 1) {
          sock.opened = true;
          if (sock.onopen) sock.onopen();
        } else if (d === 0) ended();
        else if (typeof d === 'string' && sock.onmessage) sock.onmessage({ data: d });
      };
      sock.send = (buf) => nPortPost.call(port, buf, [buf]);
      sock.close = () => {
        try {
          nPortPost.call(port, 0);
        } catch (_) {}
        ended();
      };
      nPortPost.call(port, url);
      return sock;
    }

    function closeSocket(sock) {
      try {
        if (sock.relay) sock.close();
        else nWsClose.call(sock);
      } catch (_) {}
    }

    function wsConnect() {
      const url = wsUrl + '/' + inst;
      let sock = null;
      if (!relayBroken) {
        try {
          sock = relaySocket(url);
        } catch (_) {
          relayBroken = true;
        }
      }
      if (sock === null) {
        try {
          sock = new WS(url);
        } catch (_) {
          wsLost();
          return;
        }
        sock.binaryType = 'arraybuffer';
      }
      ws = sock;
      nSetTimeout(() => {
        if (ws !== sock || wsState === 'open') return;
        wsLost(); // never opened in time (first: the close below must not count twice)
        closeSocket(sock);
      }, 2000);
      sock.onopen = () => {
        if (ws !== sock) return;
        wsState = 'open';
        wsEverOpen = true;
        wsFailures = 0;
        pump();
      };
      sock.onmessage = (ev) => {
        // Text ack: the seq Python has consumed (cumulative).
        const n = +ev.data;
        if (n === n) ackUpTo(n);
      };
      sock.onclose = () => {
        if (ws === sock) wsLost();
      };
    }

    function wsLost() {
      ws = null;
      // Frames sent on the lost socket are not coming back: free their slots.
      inflight.clear();
      wsFailures++;
      if (wsFailures >= WS_MAX_FAILURES) {
        wsState = 'off'; // give up: the binding carries on
        pump();
        return;
      }
      wsState = 'connecting';
      nSetTimeout(() => {
        try {
          wsConnect();
        } catch (_) {}
      }, 250 * wsFailures);
    }

    function ackUpTo(n) {
      for (const s of inflight.keys()) {
        if (s <= n) {
          inflight.delete(s);
          acked++;
        }
      }
      pump();
    }

    function b64(buf) {
      const u8 = new Uint8Array(buf);
      if (toB64) return toB64.call(u8);
      let s = '';
      for (let i = 0; i < u8.length; i += 0x8000) {
        s += fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
      }
      return nBtoa(s);
    }

    function onFrame(d) {
      seq++;
      if (wsState === 'off' && typeof W[BINDING] !== 'function') {
        dropped++; // nobody listening: drop early, skip encoding
        return;
      }
      queue.push([d.pcm, seq, d.ts, sourceCount, d.peak, d.rms]);
      if (queue.length > maxQueued) {
        queue.shift(); // overflow: the OLDEST queued frame goes
        dropped++;
      }
      pump();
    }

    function sendWs(f) {
      const pcm = new Uint8Array(f[0]);
      const out = new ArrayBuffer(HEADER + pcm.byteLength);
      const dv = new DataView(out);
      dv.setUint32(0, f[1], true);
      dv.setFloat64(4, f[2], true);
      dv.setUint16(12, f[3], true);
      dv.setFloat32(16, f[4], true);
      dv.setFloat32(20, f[5], true);
      dv.setUint32(24, dropped, true);
      new Uint8Array(out, HEADER).set(pcm);
      if (ws.relay) ws.send(out);
      else nWsSend.call(ws, out);
    }

    function pump() {
      const t = now();
      for (const [s, at] of inflight) {
        if (t - at > ACK_TIMEOUT_MS) {
          inflight.delete(s);
          timedOut++;
        }
      }
      if (wsState === 'connecting') return; // frames wait (bounded) for the socket
      while (queue.length && inflight.size < maxInFlight) {
        const f = queue.shift();
        if (wsState === 'open') {
          try {
            sendWs(f);
          } catch (_) {
            dropped++;
            continue;
          }
          sent++;
          inflight.set(f[1], t);
          continue;
        }
        const fn = W[BINDING];
        if (typeof fn !== 'function') {
          dropped++;
          continue;
        }
        let p;
        try {
          p = fn(b64(f[0]), f[1], f[2], f[3], f[4], f[5], dropped, inst);
        } catch (_) {
          dropped++;
          continue;
        }
        sent++;
        const s = f[1];
        inflight.set(s, t);
        const done = () => {
          if (inflight.delete(s)) acked++;
          pump();
        };
        if (p && typeof p.then === 'function') p.then(done, done);
        else done();
      }
    }

    if (wsState === 'connecting') wsConnect();

    // ---- the VP's own voice -------------------------------------------------------------------
    let voice = null;
    function ensureVoice() {
      if (voice) return voice;
      const ctx = new AC();
      internalCtx.add(ctx);
      const dest = nCreateMSD.call(ctx);
      const gain = nCreateGain.call(ctx);
      nConnect.call(gain, dest);
      const track = nGetTracks.call(dest.stream)[0];
      voiceTracks.add(track);
      voice = { ctx, dest, gain, track, next: 0, nodes: new Set(), idleSince: now() };
      return voice;
    }

    // An idle voice context is suspended: a running one costs an audio output stream and an
    // Opus encoder fed with silence all call long. A suspended context gives the outgoing track
    // no samples, so nothing is encoded or sent until the VP speaks (play() resumes it).
    const VOICE_IDLE_MS = 2000;
    function voiceIdleCheck() {
      const v = voice;
      if (!v || v.ctx.state !== 'running') return;
      if (v.nodes.size || v.next > v.ctx.currentTime) {
        v.idleSince = now();
        return;
      }
      if (now() - v.idleSince >= VOICE_IDLE_MS) v.ctx.suspend().catch(() => {});
    }

    function decodeB64(s) {
      if (fromB64) return fromB64(s);
      const bin = nAtob(s);
      const u8 = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
      return u8;
    }

    const voiceApi = {
      /** Queue base64 PCM16LE mono 16 kHz; returns seconds until the queue drains. */
      play(b64pcm) {
        const v = ensureVoice();
        v.idleSince = now();
        if (v.ctx.state === 'suspended') v.ctx.resume().catch(() => {});
        const u8 = decodeB64(b64pcm);
        const n = u8.length >> 1;
        if (n > 0) {
          const i16 = new Int16Array(u8.buffer, u8.byteOffset, n);
          const ab = v.ctx.createBuffer(1, n, 16000);
          const ch = ab.getChannelData(0);
          for (let k = 0; k < n; k++) ch[k] = i16[k] / 32768;
          const src = v.ctx.createBufferSource();
          src.buffer = ab;
          nConnect.call(src, v.gain);
          const t0 = Math.max(v.ctx.currentTime + 0.02, v.next);
          src.start(t0);
          v.next = t0 + ab.duration;
          v.nodes.add(src);
          src.onended = () => {
            v.nodes.delete(src);
            try {
              nDisconnect.call(src);
            } catch (_) {}
          };
        }
        return Math.max(0, v.next - v.ctx.currentTime);
      },
      /** Cut whatever is queued. */
      stop() {
        if (!voice) return;
        for (const src of voice.nodes) {
          try {
            src.stop();
          } catch (_) {}
        }
        voice.nodes.clear();
        voice.next = 0;
      },
    };

    const MD = W.MediaDevices && W.MediaDevices.prototype;
    const nGUM = MD && MD.getUserMedia;
    if (cfg.voice !== false && typeof nGUM === 'function') {
      Object.defineProperty(W, '__vpVoice', { value: voiceApi, configurable: true, enumerable: false });
      const nCloneFn = nClone;
      W.MediaStreamTrack.prototype.clone = function clone() {
        const c = nCloneFn.call(this);
        try {
          if (voiceTracks.has(this)) voiceTracks.add(c);
        } catch (_) {}
        return c;
      };
      Object.defineProperty(MD, 'getUserMedia', {
        configurable: true,
        enumerable: true,
        writable: true,
        value: function getUserMedia(constraints) {
          let audio = false;
          let video = false;
          try {
            audio = !!(constraints && constraints.audio);
            video = constraints && constraints.video;
          } catch (_) {}
          if (!audio) return nGUM.call(this, constraints);
          const self = this;
          return (async () => {
            const out = new MS();
            if (video) {
              const s = await nGUM.call(self, { video });
              for (const t of s.getVideoTracks()) out.addTrack(t);
            }
            const v = ensureVoice(); // suspended while idle (voiceIdleCheck), resumed by play()
            const t = nCloneFn.call(v.track);
            voiceTracks.add(t);
            out.addTrack(t);
            return out;
          })();
        },
      });
    }

    // ---- housekeeping -------------------------------------------------------------------------
    ensureCapture();
    nSetInterval(() => {
      try {
        reconcile();
        pump();
        if (cap && cap.ctx.state === 'suspended') cap.ctx.resume().catch(() => {});
        voiceIdleCheck();
      } catch (_) {}
    }, 1000);

    api.stats = () => ({
      inst,
      mode: cap ? cap.mode : 'none',
      ctxState: cap ? cap.ctx.state : 'none',
      seq,
      sent,
      acked,
      dropped,
      timedOut,
      queued: queue.length,
      inFlight: inflight.size,
      transport: wsState === 'open' ? 'websocket' : wsState === 'connecting' ? 'connecting' : 'binding',
      wsEverOpen,
      relay: !!(ws && ws.relay),
      sources: sourceCount,
      keys: Array.from(active.keys()),
      tracks: tracks.size,
      voice: voice ? voice.ctx.state : 'none',
    });
  }
})();
