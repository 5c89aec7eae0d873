// capture.js part 90-housekeeping: start capture, the periodic tick, stats(); closes main() and the script
// (a fragment of main() in 00-prelude.js; vp/capture.py joins the parts in name order)
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

    // Capture health: rebuild the graph from the current sources (vp.capture.AudioCapture.reattach).
    api.reattach = () => {
      for (const node of active.values()) {
        try {
          nDisconnect.call(node);
        } catch (_) {}
      }
      active.clear();
      reconcile();
      if (cap && cap.ctx.state === 'suspended') cap.ctx.resume().catch(() => {});
      return sourceCount;
    };

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
