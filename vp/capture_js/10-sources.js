// capture.js part 10-sources: what the page plays — RTCPeerConnection tracks, media elements, WebAudio taps
// (a fragment of main() in 00-prelude.js; vp/capture.py joins the parts in name order)
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

    if (typeof nCreateTrackSrc === 'function') {
      AC.prototype.createMediaStreamTrackSource = function createMediaStreamTrackSource(track) {
        const n = nCreateTrackSrc.call(this, track);
        try {
          trackOfNode.set(n, track);
        } catch (_) {}
        return n;
      };
    }

