// capture.js part 20-transport: the capture context and worklet, frames to Python (WebSocket relay or binding)
// (a fragment of main() in 00-prelude.js; vp/capture.py joins the parts in name order)
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
        const url = nCreateUrl.call(W.URL, new nBlob([WORKLET], { type: 'text/javascript' }));
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
          .finally(() => nRevokeUrl.call(W.URL, url));
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

