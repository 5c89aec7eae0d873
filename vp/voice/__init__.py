"""The VP's voice: speech synthesis engines (:mod:`vp.voice.synthesis`) and the speaker that
plays their audio into the meeting, one utterance at a time (:mod:`vp.voice.speaker`)."""
