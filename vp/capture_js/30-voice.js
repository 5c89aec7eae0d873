// capture.js part 30-voice: the VP's own outgoing voice (getUserMedia override, __vpVoice)
// (a fragment of main() in 00-prelude.js; vp/capture.py joins the parts in name order)
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

