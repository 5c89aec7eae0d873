/*
 * Meeting audio as ONE mixed remote stream played by ONE <audio> element, shared by the
 * replicas whose clients do it that way:
 *   - Chime, plumbed the way the Amazon Chime SDK for JavaScript does it (bindAudioElement(),
 *     id "audio-speaker-element" in the SDK's logs);
 *   - Webex, in its cross-origin client frame (the facts record bots taking Webex as mixed tab
 *     audio, and MCR's bridge taking the frame's remote tracks).
 *
 * The "media server" lives in this page (loopback-media.js): each participant's tone WAV
 * (/__replica/m/<id>/audio/<index>.wav) is decoded in an AudioContext, looped through that
 * participant's gain (open only while they speak) into a MediaStreamAudioDestinationNode (the
 * server-side mix), which is sent over a loopback RTCPeerConnection pair. The page receives it
 * as a genuine remote WebRTC track (Opus) and plays it through the bound element. Levels
 * are the WAVs' own: every gain is 0 or 1 and one participant speaks at a time.
 */
(function () {
  'use strict';

  function MixedMeetingAudio(meetingId, participantCount, scenario) {
    this.meetingId = meetingId;
    this.cameras = window.ReplicaCameras ? window.ReplicaCameras.fromScenario(scenario) : null;
    this.count = participantCount;
    this.ctx = null;
    this.mix = null;
    this.buffers = [];
    this.gains = [];
    this.sources = [];
    this.pcs = [];
    this.stream = null;
    this.speaking = -1;
  }

  MixedMeetingAudio.prototype.start = async function () {
    const ctx = (this.ctx = new AudioContext({ sampleRate: 48000 }));
    if (ctx.state === 'suspended') ctx.resume().catch(function () {});
    this.mix = ctx.createMediaStreamDestination();
    this.mix.channelCount = 1;
    for (let i = 0; i < this.count; i++) {
      const gain = ctx.createGain();
      gain.gain.value = 0;
      gain.connect(this.mix);
      this.gains.push(gain);
    }
    this.buffers = await window.LoopbackMedia.loadTones(ctx, this.meetingId, this.count);
    await this._connect();
    return this.stream;
  };

  // The SFU leg: server mix -> RTCPeerConnection -> RTCPeerConnection -> remote track.
  MixedMeetingAudio.prototype._connect = async function () {
    let resolveStream = null;
    const got = new Promise(function (resolve) {
      resolveStream = resolve;
    });
    this.pcs = await window.LoopbackMedia.loopback([this.mix.stream], this.cameras, function (s) {
      resolveStream(s);
    });
    this.stream = await got;
  };

  // The one element that plays the meeting (Chime: DefaultAudioVideoController.bindAudioElement()).
  MixedMeetingAudio.prototype.bindAudioElement = function (el) {
    el.srcObject = this.stream;
    el.autoplay = true;
    const p = el.play();
    if (p && p.catch) p.catch(function () {});
  };

  // Open participant i's gain (and restart their signal) — or nobody's with i = -1.
  MixedMeetingAudio.prototype.setSpeaker = function (i) {
    if (!this.ctx || i === this.speaking) return;
    const t = this.ctx.currentTime;
    if (this.speaking >= 0) {
      this.gains[this.speaking].gain.setValueAtTime(0, t);
      const old = this.sources[this.speaking];
      if (old) {
        try {
          old.stop(t + 0.01);
        } catch (e) {}
        this.sources[this.speaking] = null;
      }
    }
    this.speaking = i;
    if (i < 0 || !this.buffers[i]) return;
    const src = this.ctx.createBufferSource();
    src.buffer = this.buffers[i];
    src.loop = true;
    src.connect(this.gains[i]);
    src.start(t);
    this.sources[i] = src;
    this.gains[i].gain.setValueAtTime(1, t);
  };

  MixedMeetingAudio.prototype.stop = function () {
    this.setSpeaker(-1);
    window.LoopbackMedia.closeAll(this.pcs);
    this.pcs = [];
    if (this.ctx) this.ctx.close().catch(function () {});
    this.ctx = null;
  };

  window.MixedMeetingAudio = MixedMeetingAudio;
})();
