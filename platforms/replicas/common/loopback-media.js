/*
 * The in-page "media server" legs the replicas' audio modules share (mixed-audio.js for Chime
 * and Webex, meet/meet-audio.js for Meet): each participant's tone WAV
 * (/__replica/m/<id>/audio/<index>.wav) decoded in an AudioContext, and the SFU leg — local
 * streams sent over a loopback RTCPeerConnection pair, so the page receives them as genuine
 * remote WebRTC tracks (Opus), with the scenario's cameras (cameras.js) alongside.
 */
(function () {
  'use strict';

  // Participant i's tone, decoded in ctx: resolves to [buffer of participant 0, 1, …].
  function loadTones(ctx, meetingId, count) {
    const loads = [];
    for (let i = 0; i < count; i++) {
      loads.push(
        fetch('/__replica/m/' + encodeURIComponent(meetingId) + '/audio/' + i + '.wav')
          .then(function (r) {
            if (!r.ok) throw new Error('audio ' + i + ': HTTP ' + r.status);
            return r.arrayBuffer();
          })
          .then(function (data) {
            return ctx.decodeAudioData(data);
          })
      );
    }
    return Promise.all(loads);
  }

  // Send each stream's audio track to a receiving peer; onAudio(stream) for each remote audio
  // track (camera tracks are tiles, not audio). Resolves to the [send, recv] pair.
  async function loopback(streams, cameras, onAudio) {
    const send = new RTCPeerConnection();
    const recv = new RTCPeerConnection();
    send.onicecandidate = function (e) {
      if (e.candidate) recv.addIceCandidate(e.candidate).catch(function () {});
    };
    recv.onicecandidate = function (e) {
      if (e.candidate) send.addIceCandidate(e.candidate).catch(function () {});
    };
    recv.ontrack = function (ev) {
      if (ev.track.kind !== 'audio') return; // cameras (Scenario.camera_streams) are tiles
      onAudio(ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]));
    };
    for (const stream of streams) send.addTrack(stream.getAudioTracks()[0], stream);
    if (cameras) window.ReplicaCameras.add(send, recv, cameras);
    await send.setLocalDescription();
    await recv.setRemoteDescription(send.localDescription);
    await recv.setLocalDescription();
    await send.setRemoteDescription(recv.localDescription);
    return [send, recv];
  }

  function closeAll(pcs) {
    for (const pc of pcs) {
      try {
        pc.close();
      } catch (e) {}
    }
  }

  window.LoopbackMedia = { loadTones: loadTones, loopback: loopback, closeAll: closeAll };
})();
