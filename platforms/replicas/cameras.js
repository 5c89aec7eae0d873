/*
 * Remote camera streams for a replica's loopback media leg (Scenario.camera_streams): the load
 * a real meeting puts on a VP. Each camera is a canvas redrawn every frame with moving
 * content (so the encoder and the VP's decoder do real work, unlike a still image), captured
 * at the scenario's size and rate, added to the SAME "server" RTCPeerConnection as the
 * meeting audio (VP8 preferred, as Zoom's and Meet's web clients negotiate), and rendered on
 * the receiving side in muted <video> tiles, as a client's gallery does.
 *
 *   ReplicaCameras.add(serverPc, clientPc, {count, width, height, fps})  before the offer
 *   ReplicaCameras.fromScenario(scenario)  those options, or null
 *   ReplicaCameras.stats()  per received camera: {framesDecoded, frameWidth, frameHeight}
 */
(function () {
  'use strict';

  const state = { clientPcs: [], timers: [] };

  function camera(index, width, height, fps) {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext('2d');
    let t = 0;
    function draw() {
      t++;
      g.fillStyle = 'hsl(' + ((t + index * 90) % 360) + ',40%,25%)';
      g.fillRect(0, 0, width, height);
      for (let k = 0; k < 10; k++) {
        g.fillStyle = 'hsl(' + ((k * 36 + t * 2) % 360) + ',80%,60%)';
        const x = (Math.sin(t / 17 + k) * 0.5 + 0.5) * (width - width / 6);
        const y = (Math.cos(t / 23 + k * 1.7) * 0.5 + 0.5) * (height - height / 6);
        g.fillRect(x, y, width / 6, height / 6);
      }
      g.fillStyle = '#fff';
      g.font = Math.round(height / 12) + 'px sans-serif';
      g.fillText('camera ' + index + ' · ' + t, width / 20, height / 8);
    }
    draw();
    state.timers.push(setInterval(draw, 1000 / fps));
    return canvas.captureStream(fps);
  }

  function preferVp8(transceiver) {
    if (!window.RTCRtpSender || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
    const codecs = RTCRtpSender.getCapabilities('video').codecs;
    const vp8 = codecs.filter(function (c) { return /\/VP8$/i.test(c.mimeType); });
    const rest = codecs.filter(function (c) { return !/\/VP8$/i.test(c.mimeType); });
    transceiver.setCodecPreferences(vp8.concat(rest));
  }

  function add(serverPc, clientPc, options) {
    const count = options.count || 0;
    if (!count) return;
    const width = options.width || 1280;
    const height = options.height || 720;
    const fps = options.fps || 30;
    let gallery = document.getElementById('replica-camera-gallery');
    if (!gallery) {
      gallery = document.createElement('div');
      gallery.id = 'replica-camera-gallery';
      gallery.style.cssText = 'position:fixed;right:0;bottom:0;display:flex;gap:4px;z-index:0';
      document.body.appendChild(gallery);
    }
    clientPc.addEventListener('track', function (ev) {
      if (ev.track.kind !== 'video') return;
      const tile = document.createElement('video');
      tile.muted = true;
      tile.autoplay = true;
      tile.playsInline = true;
      tile.style.cssText = 'width:320px;height:180px;background:#000';
      tile.srcObject = new MediaStream([ev.track]);
      gallery.appendChild(tile);
      const p = tile.play();
      if (p && p.catch) p.catch(function () {});
    });
    state.clientPcs.push(clientPc);
    // An SFU forwards the 720p layer: keep the resolution when bandwidth estimation starts
    // low or the CPU is busy (Chromium would otherwise scale down to 320×180).
    serverPc.addEventListener('signalingstatechange', function () {
      if (serverPc.signalingState !== 'stable') return;
      for (const sender of serverPc.getSenders()) {
        if (!sender.track || sender.track.kind !== 'video') continue;
        const params = sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        sender.setParameters(params).catch(function () {});
      }
    });
    for (let i = 0; i < count; i++) {
      const stream = camera(i, width, height, fps);
      const transceiver = serverPc.addTransceiver(stream.getVideoTracks()[0], {
        direction: 'sendonly',
        streams: [stream],
      });
      preferVp8(transceiver);
    }
  }

  async function stats() {
    const out = [];
    for (const pc of state.clientPcs) {
      const report = await pc.getStats();
      report.forEach(function (s) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.push({
            framesDecoded: s.framesDecoded || 0,
            frameWidth: s.frameWidth || 0,
            frameHeight: s.frameHeight || 0,
          });
        }
      });
    }
    return out;
  }

  // add()'s options from a scenario (null when it has no cameras).
  function fromScenario(scenario) {
    if (!scenario || !scenario.camera_streams) return null;
    return {
      count: scenario.camera_streams,
      width: scenario.camera_size[0],
      height: scenario.camera_size[1],
      fps: scenario.camera_fps,
    };
  }

  window.ReplicaCameras = { add: add, stats: stats, fromScenario: fromScenario };
})();
