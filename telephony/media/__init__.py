"""The media server: RTP endpoints for call legs whose audio needs logic (prompts, tones, music
on hold, recording, DTMF), driven by the SIP engine over a TCP control channel.

Pure asyncio and numpy, no Django. ``protocol`` (the control messages), ``server`` (sessions and
the 20 ms tick), ``client`` (the engine's side), ``sdp``, ``codecs`` (G.711), ``audio`` (WAV,
tones, the frame cache), ``dtmf`` (in-band detection); ``prompts`` names the default prompt set.
Run it with ``python -m telephony.media`` or ``manage.py mediaserver``.
"""
