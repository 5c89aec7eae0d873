/*
 * vp incoming-video suppression — a Playwright init script (context.add_init_script), installed
 * in every frame before any page script. The VP records audio only, yet a meeting sends it every
 * participant's camera, which Chromium would receive, decode (in software) and render.
 *
 * Mode 'inactive': whenever the page creates an offer or an answer (createOffer, createAnswer,
 * or setLocalDescription() without a description), every video transceiver that only RECEIVES
 * (no local track on its sender: the VP never sends video) is set to direction 'inactive'
 * first, so the negotiated SDP tells the other side (an SFU, or the replica's media server)
 * not to send that stream at all: nothing is received, decoded or rendered, and no keyframes
 * are requested (dropping frames in the page instead would make the decoder ask for keyframes
 * over and over). The client's own signalling still runs: its transceivers, m-lines, mids,
 * audio, data channels and 'track' events for offers it receives are untouched, so its UI,
 * active-speaker signals and chat keep working; a receiving tile just shows no picture.
 *
 * Config (JSON, substituted by vp/incoming_video.py): {mode: 'inactive'|'receive'}.
 * Debug: window[Symbol.for('vp.video.v1')].stats() -> {mode, suppressed, negotiations}.
 */
(() => {
  'use strict';
  const KEY = Symbol.for('vp.video.v1');
  const cfg = __VP_INCOMING_VIDEO_CONFIG__;
  const state = { mode: cfg.mode, suppressed: 0, negotiations: 0 };
  try {
    if (window[KEY]) return; // idempotent
    Object.defineProperty(window, KEY, {
      value: { stats: () => Object.assign({}, state) },
      configurable: false,
      enumerable: false,
    });
  } catch (e) {
    return;
  }
  if (cfg.mode !== 'inactive') return;
  const PC = window.RTCPeerConnection;
  const T = window.RTCRtpTransceiver;
  if (!PC || !T) return;
  const proto = PC.prototype;
  const nGetTransceivers = proto.getTransceivers;
  const dir = Object.getOwnPropertyDescriptor(T.prototype, 'direction');
  const stoppedDesc = Object.getOwnPropertyDescriptor(T.prototype, 'stopped');
  if (!nGetTransceivers || !dir || !dir.get || !dir.set) return;

  function suppress(pc) {
    state.negotiations++;
    let list;
    try {
      list = nGetTransceivers.call(pc);
    } catch (e) {
      return;
    }
    for (const t of list) {
      try {
        if (stoppedDesc && stoppedDesc.get && stoppedDesc.get.call(t)) continue;
        const track = t.receiver && t.receiver.track;
        if (!track || track.kind !== 'video') continue;
        if (t.sender && t.sender.track) continue; // something the VP sends: leave it alone
        const d = dir.get.call(t);
        if (d === 'recvonly' || d === 'sendrecv') {
          dir.set.call(t, 'inactive');
          state.suppressed++;
        }
      } catch (e) {}
    }
  }

  // Proxies keep the natives' name, length and toString ("[native code]").
  function wrap(name, when) {
    const desc = Object.getOwnPropertyDescriptor(proto, name);
    const native = desc && desc.value;
    if (typeof native !== 'function') return;
    const proxy = new Proxy(native, {
      apply(target, self, args) {
        try {
          if (self instanceof PC && when(args)) suppress(self);
        } catch (e) {}
        return Reflect.apply(target, self, args);
      },
    });
    Object.defineProperty(proto, name, Object.assign({}, desc, { value: proxy }));
  }
  wrap('createOffer', () => true);
  wrap('createAnswer', () => true);
  // setLocalDescription() / ({type}) without sdp creates the offer or answer implicitly.
  wrap('setLocalDescription', (args) => !args[0] || !args[0].sdp);
})();
