/*
 * Meeting audio for the Google Meet replica, plumbed the way Meet does it
 * (shared/facts/web-clients-meet-webex.md, Google Meet, Audio):
 *   - Meet keeps 3 audio streams for the 3 loudest participants (attendee#158); the channels
 *     are "an anonymous rotating pool" (V-cap): a slot is reassigned to whoever speaks now
 *     (BaaS#301), so one participant's voice moves between slots over the call;
 *   - the three <audio> elements sit directly under <body>, not in the tiles (Vexa#107);
 *   - a variant has no <audio> elements at all (A-ui "a random ab test", BaaS#301): the page
 *     plays the remote tracks through WebAudio instead (MeetAudio.playThroughWebAudio()).
 *
 * The "SFU" lives in this page (../common/loopback-media.js): each participant's tone WAV (/__replica/m/<id>/audio/<i>.wav)
 * is decoded and looped into the slot (a MediaStreamAudioDestinationNode) the pool gives the
 * current speaker; the three slots go over a loopback RTCPeerConnection pair as three genuine
 * remote WebRTC tracks. Levels are the WAVs' own; one participant speaks at a time.
 */
(function () {
  'use strict';

  const SLOTS = 3;

  function MeetAudio(meetingId, participantCount, scenario) {
    this.meetingId = meetingId;
    this.cameras = window.ReplicaCameras ? window.ReplicaCameras.fromScenario(scenario) : null;
    this.count = participantCount;
    this.ctx = null;
    this.slots = []; // MediaStreamAudioDestinationNode per slot
    this.buffers = [];
    this.playing = null; // {index, slot, src, gain}
    this.lastSlot = -1;
    this.pcs = [];
    this.remote = []; // the received MediaStreams, one per slot
    this.playCtx = null;
  }

  MeetAudio.prototype.start = async function () {
    const ctx = (this.ctx = new AudioContext({ sampleRate: 48000 }));
    if (ctx.state === 'suspended') ctx.resume().catch(function () {});
    for (let s = 0; s < SLOTS; s++) {
      const dest = ctx.createMediaStreamDestination();
      dest.channelCount = 1;
      this.slots.push(dest);
    }
    this.buffers = await window.LoopbackMedia.loadTones(ctx, this.meetingId, this.count);
    await this._connect();
    return this.remote;
  };

  // The SFU leg: three slot tracks -> RTCPeerConnection -> RTCPeerConnection -> three remote tracks.
  MeetAudio.prototype._connect = async function () {
    const self = this;
    let resolveAll = null;
    const got = new Promise(function (resolve) {
      resolveAll = resolve;
    });
    const streams = this.slots.map(function (slot) {
      return slot.stream;
    });
    this.pcs = await window.LoopbackMedia.loopback(streams, this.cameras, function (stream) {
      self.remote.push(stream);
      if (self.remote.length === SLOTS) resolveAll();
    });
    await got;
  };

  // The three elements directly under <body> (what the real client does).
  MeetAudio.prototype.bindAudioElements = function () {
    const els = [];
    for (const stream of this.remote) {
      const el = document.createElement('audio');
      el.autoplay = true;
      el.srcObject = stream;
      document.body.appendChild(el);
      const p = el.play();
      if (p && p.catch) p.catch(function () {});
      els.push(el);
    }
    return els;
  };

  // The variant without <audio> elements: the page mixes the slots in WebAudio itself.
  MeetAudio.prototype.playThroughWebAudio = function () {
    const ctx = (this.playCtx = new AudioContext({ sampleRate: 48000 }));
    if (ctx.state === 'suspended') ctx.resume().catch(function () {});
    for (const stream of this.remote) ctx.createMediaStreamSource(stream).connect(ctx.destination);
  };

  // Participant i speaks now (-1: nobody). The pool gives them the least recently used slot.
  MeetAudio.prototype.setSpeaker = function (i) {
    if (!this.ctx) return;
    if (this.playing && this.playing.index === i) return;
    const t = this.ctx.currentTime;
    if (this.playing) {
      try {
        this.playing.src.stop(t + 0.01);
      } catch (e) {}
      this.playing.gain.disconnect();
      this.playing = null;
    }
    if (i < 0 || !this.buffers[i]) return;
    const slot = (this.lastSlot + 1) % SLOTS; // rotate: speakers move between slots
    this.lastSlot = slot;
    const src = this.ctx.createBufferSource();
    src.buffer = this.buffers[i];
    src.loop = true;
    const gain = this.ctx.createGain();
    src.connect(gain);
    gain.connect(this.slots[slot]);
    src.start(t);
    this.playing = { index: i, slot: slot, src: src, gain: gain };
  };

  MeetAudio.prototype.stop = function () {
    this.setSpeaker(-1);
    window.LoopbackMedia.closeAll(this.pcs);
    this.pcs = [];
    for (const c of [this.ctx, this.playCtx]) if (c) c.close().catch(function () {});
    this.ctx = null;
    this.playCtx = null;
  };

  window.MeetAudio = MeetAudio;
})();
