/*
 * Remote camera streams for a replica's loopback media leg (Scenario.camera_streams): the load
 * a real meeting puts on a VP. Each camera is a canvas redrawn every frame with moving
 * content (so the encoder and the VP's decoder do real work, unlike a still image), captured
 * at the scenario's size and rate, added to the SAME "server" RTCPeerConnection as the
 * meeting audio (VP8 preferred, as Zoom's and Meet's web clients negotiate), and rendered on
 * the receiving side in muted <video> tiles, as a client's gallery does.
 *
 * With Scenario.camera_sender 'external' (the benchmark), the cameras come instead from a
 * sender page in ANOTHER browser (/__replica/camera-sender?m=<meeting id>, see
 * camera-sender.html) over a receive-only peer connection of their own, signalled through the
 * replica server (/__replica/m/<id>/cameras): the encoders' CPU is then not the VP's.
 *
 * Scenario.screen_share adds a screen share after the cameras on the same path: a 1920×1080
 * canvas of slides whose text changes slowly (a new slide every few seconds, a ticking clock
 * line), at a low frame rate (5 fps), VP8 with contentHint 'detail' as a browser's
 * getDisplayMedia share of a document; the receiving side shows it in a large share tile.
 *
 *   ReplicaCameras.add(serverPc, clientPc, {count, width, height, fps, share, external,
 *     meetingId})  before the offer; share: null or {width, height, fps}
 *   ReplicaCameras.fromScenario(scenario)  those options, or null
 *   ReplicaCameras.stats()  {cameras: per video transceiver of the receiving side {mid, kind
 *     ('camera' | 'share'), direction (negotiated), framesDecoded, frameWidth, frameHeight},
 *     framesEncoded: the in-page senders' total}
 *   ReplicaCameras.camera(index, width, height, fps)  a moving canvas's stream (the sender page)
 *   ReplicaCameras.screen(width, height, fps)  the slides canvas's stream
 */
(function () {
  'use strict';

  const state = { clientPcs: [], serverPcs: [], timers: [] };
  const kinds = new Map(); // receiving pc -> its camera count (video transceivers after: share)

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

  // A screen share of slides: mostly still text that changes every few seconds (a new slide)
  // plus a clock line each second, as a presenter's document; the encoder codes the changes.
  function screen(width, height, fps) {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const g = canvas.getContext('2d');
    const started = Date.now();
    const unit = Math.round(height / 27);
    function draw() {
      const s = Math.floor((Date.now() - started) / 1000);
      const slide = Math.floor(s / 4) + 1;
      g.fillStyle = '#fafafa';
      g.fillRect(0, 0, width, height);
      g.fillStyle = 'hsl(' + ((slide * 47) % 360) + ',45%,35%)';
      g.fillRect(0, 0, width, unit * 4);
      g.fillStyle = '#fff';
      g.font = 'bold ' + unit * 2 + 'px sans-serif';
      g.fillText('Quarterly review — slide ' + slide, unit * 2, unit * 2.8);
      g.fillStyle = '#222';
      g.font = unit + 'px sans-serif';
      for (let k = 0; k < 14; k++) {
        const n = (slide * 7 + k * 13) % 97;
        g.fillText('• item ' + (k + 1) + ': figure ' + n + '.' + ((n * 31) % 100) +
          ' against a target of ' + ((n * 17) % 89) + ' (note ' + slide + '/' + k + ')',
          unit * 3, unit * (6.5 + k * 1.4));
      }
      g.fillStyle = '#666';
      g.fillText('presenting for ' + s + ' s', unit * 2, height - unit);
    }
    draw();
    state.timers.push(setInterval(draw, 1000 / fps));
    const stream = canvas.captureStream(fps);
    stream.getVideoTracks()[0].contentHint = 'detail';
    return stream;
  }

  function preferVp8(transceiver) {
    if (!window.RTCRtpSender || !RTCRtpSender.getCapabilities || !transceiver.setCodecPreferences) return;
    const codecs = RTCRtpSender.getCapabilities('video').codecs;
    const vp8 = codecs.filter(function (c) { return /\/VP8$/i.test(c.mimeType); });
    const rest = codecs.filter(function (c) { return !/\/VP8$/i.test(c.mimeType); });
    transceiver.setCodecPreferences(vp8.concat(rest));
  }

  function gallery() {
    let el = document.getElementById('replica-camera-gallery');
    if (!el) {
      el = document.createElement('div');
      el.id = 'replica-camera-gallery';
      // Display only: clicks go through to the client's controls underneath.
      el.style.cssText =
        'position:fixed;right:0;bottom:0;display:flex;gap:4px;z-index:0;pointer-events:none';
      document.body.appendChild(el);
    }
    return el;
  }

  // Which incoming video a receiving transceiver carries: the sender adds the cameras first,
  // then the share, and the receiving side's transceivers follow the offer's m-line order.
  function videoKind(clientPc, transceiver) {
    const video = clientPc.getTransceivers().filter(function (t) {
      return t.receiver.track && t.receiver.track.kind === 'video';
    });
    return video.indexOf(transceiver) >= (kinds.get(clientPc) || 0) ? 'share' : 'camera';
  }

  // Render each incoming camera in a tile, as a client's gallery does, and a share in a
  // large tile, as a client's stage does.
  function showTiles(clientPc, count) {
    kinds.set(clientPc, count);
    clientPc.addEventListener('track', function (ev) {
      if (ev.track.kind !== 'video') return;
      const share = videoKind(clientPc, ev.transceiver) === 'share';
      const tile = document.createElement('video');
      tile.muted = true;
      tile.autoplay = true;
      tile.playsInline = true;
      if (share) tile.className = 'replica-share-tile';
      tile.style.cssText = share
        ? 'width:640px;height:360px;background:#000'
        : 'width:320px;height:180px;background:#000';
      tile.srcObject = new MediaStream([ev.track]);
      gallery().appendChild(tile);
      const p = tile.play();
      if (p && p.catch) p.catch(function () {});
    });
    state.clientPcs.push(clientPc);
  }

  // An SFU forwards the 720p layer: keep the resolution when bandwidth estimation starts
  // low or the CPU is busy (Chromium would otherwise scale down to 320×180).
  function keepResolution(serverPc) {
    serverPc.addEventListener('signalingstatechange', function () {
      if (serverPc.signalingState !== 'stable') return;
      for (const sender of serverPc.getSenders()) {
        if (!sender.track || sender.track.kind !== 'video') continue;
        const params = sender.getParameters();
        params.degradationPreference = 'maintain-resolution';
        sender.setParameters(params).catch(function () {});
      }
    });
  }

  // The cameras, then the share (null: none), each on a send-only VP8 transceiver.
  function addCameras(serverPc, count, width, height, fps, share) {
    keepResolution(serverPc);
    state.serverPcs.push(serverPc);
    const streams = [];
    for (let i = 0; i < count; i++) streams.push(camera(i, width, height, fps));
    if (share) streams.push(screen(share.width, share.height, share.fps));
    for (const stream of streams) {
      const transceiver = serverPc.addTransceiver(stream.getVideoTracks()[0], {
        direction: 'sendonly',
        streams: [stream],
      });
      preferVp8(transceiver);
    }
  }

  function add(serverPc, clientPc, options) {
    const count = options.count || 0;
    if (!count && !options.share) return;
    const width = options.width || 1280;
    const height = options.height || 720;
    const fps = options.fps || 30;
    if (options.external) {
      receiveExternal(options.meetingId, count).catch(function (e) {
        console.warn('[replica] external cameras failed', e);
      });
      return;
    }
    showTiles(clientPc, count);
    addCameras(serverPc, count, width, height, fps, options.share || null);
  }

  // The cameras of an external sender page: this page asks for them, the sender offers, this
  // page answers (through the replica server; full ICE gathering, no trickle: loopback).
  async function receiveExternal(meetingId, count) {
    const base = '/__replica/m/' + encodeURIComponent(meetingId) + '/cameras';
    const session = Math.random().toString(36).slice(2, 12);
    const pc = new RTCPeerConnection();
    showTiles(pc, count);
    await post(base + '/' + session + '/request', { at: Date.now() });
    let offer = null;
    while (!offer) {
      await sleep(200);
      const sessions = await (await fetch(base, { cache: 'no-store' })).json();
      offer = sessions[session] && sessions[session].offer;
    }
    await pc.setRemoteDescription(offer);
    await pc.setLocalDescription(await pc.createAnswer());
    await gathered(pc);
    await post(base + '/' + session + '/answer', pc.localDescription.toJSON());
  }

  function post(url, body) {
    return fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  }

  function sleep(ms) {
    return new Promise(function (r) { setTimeout(r, ms); });
  }

  function gathered(pc) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise(function (resolve) {
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', function () {
        if (pc.iceGatheringState === 'complete') {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async function stats() {
    const cameras = [];
    for (const pc of state.clientPcs) {
      const inbound = {};
      (await pc.getStats()).forEach(function (s) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') inbound[s.mid] = s;
      });
      for (const t of pc.getTransceivers()) {
        if (!t.receiver.track || t.receiver.track.kind !== 'video') continue;
        const s = inbound[t.mid] || {};
        cameras.push({
          mid: t.mid,
          kind: videoKind(pc, t),
          direction: t.currentDirection,
          framesDecoded: s.framesDecoded || 0,
          frameWidth: s.frameWidth || 0,
          frameHeight: s.frameHeight || 0,
        });
      }
    }
    let framesEncoded = 0;
    for (const pc of state.serverPcs) {
      (await pc.getStats()).forEach(function (s) {
        if (s.type === 'outbound-rtp' && s.kind === 'video') framesEncoded += s.framesEncoded || 0;
      });
    }
    return { cameras: cameras, framesEncoded: framesEncoded };
  }

  // add()'s options from a scenario (null when it has no cameras and no share).
  function fromScenario(scenario) {
    if (!scenario || !(scenario.camera_streams || scenario.screen_share)) return null;
    return {
      count: scenario.camera_streams,
      width: scenario.camera_size[0],
      height: scenario.camera_size[1],
      fps: scenario.camera_fps,
      share: scenario.screen_share
        ? {
          width: scenario.screen_share_size[0],
          height: scenario.screen_share_size[1],
          fps: scenario.screen_share_fps,
        }
        : null,
      external: scenario.camera_sender === 'external',
      meetingId: scenario.meeting_id,
    };
  }

  window.ReplicaCameras = {
    add: add,
    stats: stats,
    fromScenario: fromScenario,
    camera: camera,
    screen: screen,
    addCameras: addCameras,
    gathered: gathered,
    post: post,
    sleep: sleep,
  };
})();
