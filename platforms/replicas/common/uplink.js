// The replicas' fake media server, uplink side: what a real client would send of the
// microphone. It keeps the audio track the client got from getUserMedia (the VP's own voice
// track, see vp/capture_js/30-voice.js), meters it every 50 ms, and reports to the replica
// server when the client starts or stops *sending sound* (mic unmuted in the client's UI and
// the track carrying audio) and when the client's mic toggles. Each replica app sets
// window.__replicaUplink = { micOn: () => bool, report: (obj) => void } once it can report.
(() => {
  const md = navigator.mediaDevices;
  if (!md || typeof md.getUserMedia !== 'function') return;
  let track = null;
  const wrapped = md.getUserMedia;
  md.getUserMedia = async function getUserMedia(constraints) {
    const stream = await wrapped.call(this, constraints);
    const t = stream.getAudioTracks()[0];
    if (t) track = t.clone(); // the client may stop its own; the uplink keeps a copy
    return stream;
  };
  let ctx = null;
  let analyser = null;
  let metered = null;
  let buf = null;
  let sending = false;
  let mic = null;
  let lastLoud = 0;
  setInterval(() => {
    const api = window.__replicaUplink;
    if (!api) return;
    const micOn = !!api.micOn();
    if (micOn !== mic) {
      mic = micOn;
      api.report({ kind: 'mic', on: micOn, at: Date.now() / 1000 });
    }
    if (!track) return;
    if (metered !== track) {
      ctx = ctx || new AudioContext();
      analyser = ctx.createAnalyser();
      analyser.fftSize = 2048;
      buf = new Float32Array(analyser.fftSize);
      ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
      metered = track;
    }
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    // Speech has pauses: sound "ends" after 300 ms of quiet, or at once when the mic goes off.
    if (micOn && Math.sqrt(sum / buf.length) > 0.01) lastLoud = Date.now();
    const now = micOn && Date.now() - lastLoud < 300;
    if (now !== sending) {
      sending = now;
      api.report({ kind: 'uplink', sending: now, at: Date.now() / 1000 });
    }
  }, 50);
})();
