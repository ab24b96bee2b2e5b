// The web softphone (templates/portal/softphone.html): the signed-in user's own extension,
// registered from this browser over SIP on a secure WebSocket with JsSIP
// (static/vendor/jssip/, loaded before this file).
//
// - Credential: POST /api/v1/me/softphone/ gives a short-lived digest credential (never the
//   SIP password) and the engine's WSS address; it is renewed RENEW_BEFORE_S seconds before
//   it expires and handed to the running UA (ua.set: JsSIP builds each request's digest from
//   the UA's current authorization_user and password), so the next REGISTER refresh uses it.
// - One registration per browser (RFC 5626): a stable instance id in localStorage (the
//   engine keeps one binding per +sip.instance/reg-id), and one tab holds the UA, elected with
//   the Web Locks API. Another tab waits in line (it takes over when the holder closes) and
//   says the phone is open elsewhere, with "use here", which steals the lock: the old holder
//   drops its socket without unregistering (the new tab's REGISTER replaces the binding; an
//   unregister arriving after it would remove the new one).
// - Text from the other side (display names, reasons) is untrusted: textContent only.
(function () {
  "use strict";

  const root = document.querySelector("[data-softphone]");
  if (!root) return;
  const JsSIP = window.JsSIP;
  const $ = (selector) => root.querySelector(selector);

  const RENEW_BEFORE_S = 300; // renew the credential this long before it expires
  const RETRY_S = 20; // a failed credential request is tried again after this
  const REGISTER_EXPIRES_S = 300;
  const INSTANCE_KEY = "pbx.softphone.instance";
  const LOCK = `pbx-softphone:${root.dataset.lock}`;
  const DIALLABLE = /^\+?[0-9*#]{1,32}$/;

  const els = {
    status: $("[data-testid=phone-status]"),
    elsewhere: $("[data-elsewhere]"),
    useHere: $("[data-use-here]"),
    mic: $("[data-mic-problem]"),
    dnd: $("[data-dnd]"),
    dndNote: $("[data-dnd-note]"),
    incoming: $("[data-incoming]"),
    callerName: $("[data-caller-name]"),
    callerNumber: $("[data-caller-number]"),
    accept: $("[data-accept]"),
    reject: $("[data-reject]"),
    callPanel: $("[data-call-panel]"),
    peerName: $("[data-peer-name]"),
    peerNumber: $("[data-peer-number]"),
    callState: $("[data-call-state]"),
    timer: $("[data-call-timer]"),
    hangup: $("[data-hangup]"),
    hold: $("[data-hold]"),
    mute: $("[data-mute]"),
    transferForm: $("[data-transfer-form]"),
    transferTo: $("#phone-transfer-to"),
    dtmfSent: $("[data-dtmf-sent]"),
    dialForm: $("[data-dial-form]"),
    number: $("#phone-number"),
    callButton: $("[data-call]"),
    dialError: $("[data-dial-error]"),
    audio: $("[data-remote-audio]"),
  };

  let ua = null; // the JsSIP UA while this tab holds the phone
  let socket = null;
  let credential = null;
  let renewTimer = null;
  let session = null; // the one call (a second incoming call is answered busy)
  let localStream = null;
  let releaseLock = null; // resolves the held lock's promise: gives the phone up
  let waitingLine = null; // AbortController of this tab's place in the lock's queue
  let callTimer = null;
  const pageTitle = document.title;

  // --- small helpers --------------------------------------------------------------------------

  /** Untrusted text made printable and short (it still only ever goes in as textContent). */
  function clean(text, max = 64) {
    return String(text == null ? "" : text)
      .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, "")
      .trim()
      .slice(0, max);
  }

  function setStatus(state, text) {
    els.status.dataset.state = state;
    els.status.textContent = text;
    root.dataset.state = state;
  }

  function instanceId() {
    let id = null;
    try {
      id = window.localStorage.getItem(INSTANCE_KEY);
    } catch (err) {
      id = null; // storage blocked: a new id per page load
    }
    if (!id || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
      id = window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID() : JsSIP.Utils.newUUID();
      try {
        window.localStorage.setItem(INSTANCE_KEY, id);
      } catch (err) {
        // not kept: registrations from this browser will not replace each other
      }
    }
    return id;
  }

  async function postJson(url, method, body) {
    const response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": root.dataset.csrf,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = data && typeof data.message === "string" ? data.message : `error ${response.status}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function responseReason(e) {
    if (e && e.response) return clean(`${e.response.status_code} ${e.response.reason_phrase}`, 80);
    return clean((e && e.cause) || "no answer", 80);
  }

  // --- the microphone -------------------------------------------------------------------------

  function showMicProblem(err) {
    let text;
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      text = "This page cannot use a microphone: open it over HTTPS.";
    } else if (err && (err.name === "NotAllowedError" || err.name === "SecurityError")) {
      text =
        "The browser refused the microphone to this site, so calls cannot be made or answered. " +
        "Allow the microphone for this site (the icon at the left of the address bar), then try again.";
    } else if (err && (err.name === "NotFoundError" || err.name === "OverconstrainedError")) {
      text = "No microphone was found. Connect one (or a headset), then try again.";
    } else if (err && err.name === "NotReadableError") {
      text = "The microphone is in use by another program or could not be opened.";
    } else {
      text = `The microphone could not be opened (${clean(err && err.name, 40) || "unknown error"}).`;
    }
    els.mic.textContent = text;
    els.mic.hidden = false;
  }

  async function microphone() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showMicProblem(null);
      throw new Error("no getUserMedia");
    }
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
      els.mic.hidden = true;
      return stream;
    } catch (err) {
      showMicProblem(err);
      throw err;
    }
  }

  // --- the ring tone (WebAudio, no file) -----------------------------------------------------

  const ringer = {
    ctx: null,
    timer: null,
    start() {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      try {
        this.ctx = this.ctx || new Ctx();
        this.ctx.resume().catch(() => {}); // may stay suspended until the user clicks
      } catch (err) {
        return;
      }
      const burst = () => {
        const ctx = this.ctx;
        const gain = ctx.createGain();
        gain.gain.value = 0.0001;
        gain.connect(ctx.destination);
        const now = ctx.currentTime;
        // A ring: 440 + 480 Hz, 0.4 s on, 0.2 s off, 0.4 s on, every 3 s.
        for (const [start, stop] of [[0, 0.4], [0.6, 1.0]]) {
          for (const freq of [440, 480]) {
            const osc = ctx.createOscillator();
            osc.frequency.value = freq;
            osc.connect(gain);
            osc.start(now + start);
            osc.stop(now + stop);
          }
          gain.gain.setValueAtTime(0.12, now + start);
          gain.gain.setValueAtTime(0.0001, now + stop);
        }
      };
      burst();
      this.timer = window.setInterval(burst, 3000);
    },
    stop() {
      if (this.timer) window.clearInterval(this.timer);
      this.timer = null;
      if (this.ctx) this.ctx.suspend().catch(() => {});
    },
  };

  // --- registration ---------------------------------------------------------------------------

  async function startPhone() {
    els.elsewhere.hidden = true;
    setStatus("connecting", "Connecting…");
    try {
      credential = await postJson(root.dataset.credentialUrl, "POST");
    } catch (err) {
      setStatus("failed", `Registration failed: ${clean(err.message, 160)}`);
      if (!err.status || err.status >= 500) scheduleRenewal(RETRY_S);
      return;
    }
    if (!releaseLock) return; // given up meanwhile
    socket = new JsSIP.WebSocketInterface(credential.ws_url);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: credential.uri,
      authorization_user: credential.authorization_user,
      password: credential.password,
      display_name: credential.display_name,
      instance_id: instanceId(),
      register: true,
      register_expires: REGISTER_EXPIRES_S,
      session_timers: false,
      user_agent: "PBX web phone (JsSIP)",
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
    });
    ua.on("connecting", () => {
      if (!ua.isRegistered()) setStatus("connecting", "Connecting…");
    });
    ua.on("connected", () => setStatus("connecting", "Connected, registering…"));
    ua.on("disconnected", () => {
      if (!ua) return;
      // A self-signed certificate accepted for this page may not count for the phone
      // server's port (some browsers keep exceptions per port): say where to accept it.
      const page = credential.ws_url.replace(/^wss:/, "https:");
      setStatus("failed", `Not connected to the phone server: trying again… (with a self-signed certificate, open ${page} once and accept it)`);
    });
    ua.on("registered", () => setStatus("registered", `Registered: calls to ${credential.extension} ring here`));
    ua.on("unregistered", () => {
      if (ua) setStatus("failed", "Not registered");
    });
    ua.on("registrationFailed", (e) => setStatus("failed", `Registration failed: ${responseReason(e)}`));
    ua.on("newRTCSession", onNewSession);
    ua.start();
    scheduleRenewal(Math.max(10, credential.expires_in - RENEW_BEFORE_S));
  }

  function scheduleRenewal(seconds) {
    window.clearTimeout(renewTimer);
    renewTimer = window.setTimeout(renew, seconds * 1000);
  }

  async function renew() {
    if (!ua) {
      if (releaseLock) startPhone(); // the first credential request had failed
      return;
    }
    try {
      const fresh = await postJson(root.dataset.credentialUrl, "POST");
      if (!ua) return;
      credential = fresh;
      ua.set("authorization_user", fresh.authorization_user);
      ua.set("password", fresh.password);
      scheduleRenewal(Math.max(10, fresh.expires_in - RENEW_BEFORE_S));
      if (!ua.isRegistered()) ua.register();
    } catch (err) {
      setStatus("failed", `Could not renew the phone's sign-in: ${clean(err.message, 160)}`);
      scheduleRenewal(RETRY_S);
    }
  }

  /** Stop the UA. ``quietly``: drop the socket first, so no unregister goes out (another tab
   * of this browser is taking the same binding over). */
  function stopPhone(quietly) {
    window.clearTimeout(renewTimer);
    renewTimer = null;
    const old = ua;
    ua = null;
    if (session) {
      try {
        session.terminate();
      } catch (err) {
        // already ending
      }
    }
    endCall();
    if (old) {
      if (quietly && socket) socket.disconnect();
      old.stop();
    }
    socket = null;
  }

  // --- one tab holds the phone (Web Locks) ----------------------------------------------------

  function holdPhone() {
    return new Promise((resolve) => {
      releaseLock = resolve;
      startPhone();
    });
  }

  function showElsewhere() {
    setStatus("elsewhere", "Open in another tab");
    els.elsewhere.hidden = false;
  }

  /** Ask for the lock; ``options`` as navigator.locks.request's. Not granted at once
   * (ifAvailable): this tab says the phone is elsewhere and waits in line. */
  function requestLock(options) {
    let granted = false;
    navigator.locks
      .request(LOCK, options, (lock) => {
        if (!lock) {
          showElsewhere();
          waitInLine();
          return undefined;
        }
        granted = true;
        waitingLine = null;
        return holdPhone();
      })
      .catch(() => {
        // Rejected: this tab's waiting request was withdrawn (its own "use here"), or the lock
        // it held was stolen by another tab's "use here".
        if (!granted) return;
        releaseLock = null;
        stopPhone(true);
        showElsewhere();
        waitInLine();
      });
  }

  function waitInLine() {
    if (waitingLine) return;
    waitingLine = new AbortController();
    requestLock({ signal: waitingLine.signal });
  }

  function useHere() {
    if (waitingLine) waitingLine.abort();
    waitingLine = null;
    if (!navigator.locks) return;
    requestLock({ steal: true });
  }

  function elect() {
    if (!JsSIP) {
      setStatus("failed", "The phone's SIP library did not load.");
      return;
    }
    if (!navigator.locks) {
      // No Web Locks (an old browser): this tab registers; the instance id keeps it to one
      // binding per browser all the same.
      releaseLock = () => {};
      startPhone();
      return;
    }
    if (root.dataset.take === "1") useHere();
    else requestLock({ ifAvailable: true });
  }

  // --- calls ----------------------------------------------------------------------------------

  function peerOf(s) {
    const id = s.remote_identity;
    const number = clean(id && id.uri && id.uri.user, 40);
    const name = clean(id && id.display_name, 64);
    return { name: name && name !== number ? name : "", number };
  }

  function attachAudio(pc) {
    pc.addEventListener("track", (event) => {
      const stream = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
      els.audio.srcObject = stream;
      els.audio.play().catch(() => {});
    });
  }

  function showCall(s, state) {
    const peer = peerOf(s);
    els.peerName.textContent = peer.name;
    els.peerNumber.textContent = peer.number;
    els.callState.textContent = state;
    els.callPanel.hidden = false;
    els.callButton.disabled = true;
  }

  function startTimer() {
    const started = Date.now();
    window.clearInterval(callTimer);
    const tick = () => {
      const s = Math.floor((Date.now() - started) / 1000);
      els.timer.textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    };
    tick();
    callTimer = window.setInterval(tick, 1000);
  }

  function endCall(reason) {
    ringer.stop();
    document.title = pageTitle;
    window.clearInterval(callTimer);
    callTimer = null;
    session = null;
    if (localStream) localStream.getTracks().forEach((t) => t.stop());
    localStream = null;
    els.audio.srcObject = null;
    els.incoming.hidden = true;
    els.callPanel.hidden = true;
    els.timer.textContent = "";
    els.dtmfSent.textContent = "";
    delete els.dtmfSent.dataset.keys;
    els.hold.textContent = "Hold";
    els.hold.setAttribute("aria-pressed", "false");
    els.mute.textContent = "Mute";
    els.mute.setAttribute("aria-pressed", "false");
    els.callButton.disabled = false;
    if (reason) els.dialError.textContent = reason;
  }

  function wireSession(s) {
    s.on("progress", () => {
      if (s === session && s.direction === "outgoing") els.callState.textContent = "Ringing…";
    });
    s.on("accepted", () => {
      if (s !== session) return;
      els.callState.textContent = "Connected";
      startTimer();
    });
    s.on("confirmed", () => {
      if (s === session) els.callState.textContent = "Connected";
    });
    s.on("hold", (e) => {
      if (s !== session) return;
      if (e.originator === "local") {
        els.hold.textContent = "Resume";
        els.hold.setAttribute("aria-pressed", "true");
        els.callState.textContent = "On hold";
      } else {
        els.callState.textContent = "Held by the other side";
      }
    });
    s.on("unhold", (e) => {
      if (s !== session) return;
      if (e.originator === "local") {
        els.hold.textContent = "Hold";
        els.hold.setAttribute("aria-pressed", "false");
      }
      els.callState.textContent = "Connected";
    });
    s.on("muted", () => {
      els.mute.textContent = "Unmute";
      els.mute.setAttribute("aria-pressed", "true");
    });
    s.on("unmuted", () => {
      els.mute.textContent = "Mute";
      els.mute.setAttribute("aria-pressed", "false");
    });
    s.on("peerconnection", (e) => attachAudio(e.peerconnection));
    s.on("ended", (e) => {
      if (s !== session) return;
      endCall(e.originator === "remote" ? "The call ended." : "");
    });
    s.on("failed", (e) => {
      if (s !== session) return;
      if (e.cause === JsSIP.C.causes.USER_DENIED_MEDIA_ACCESS) showMicProblem({ name: "NotAllowedError" });
      const why = e.originator === "local" ? "" : `Call failed: ${responseReason(e)}`;
      endCall(why);
    });
  }

  function onNewSession(e) {
    const s = e.session;
    if (e.originator !== "remote") return; // outgoing calls are wired in dial()
    if (session) {
      s.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    session = s;
    wireSession(s);
    const peer = peerOf(s);
    els.callerName.textContent = peer.name;
    els.callerNumber.textContent = peer.number;
    els.incoming.hidden = false;
    els.callButton.disabled = true;
    document.title = `Incoming call · ${pageTitle}`;
    ringer.start();
    els.accept.focus();
  }

  async function accept() {
    const s = session;
    if (!s || s.direction !== "incoming") return;
    ringer.stop();
    try {
      localStream = await microphone();
    } catch (err) {
      s.terminate({ status_code: 480, reason_phrase: "Microphone Unavailable" });
      return;
    }
    if (s !== session || s.isEnded()) return;
    els.incoming.hidden = true;
    document.title = pageTitle;
    showCall(s, "Connecting…");
    s.answer({
      mediaStream: localStream,
      mediaConstraints: { audio: true, video: false },
      pcConfig: { iceServers: [] },
    });
  }

  function reject() {
    if (session && session.direction === "incoming") {
      session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
    }
  }

  async function dial(event) {
    event.preventDefault();
    els.dialError.textContent = "";
    if (session) return;
    const target = els.number.value.replace(/[\s().-]/g, "");
    if (!DIALLABLE.test(target)) {
      els.dialError.textContent = "Enter a number: digits, * and # (+ first for an outside number).";
      els.number.focus();
      return;
    }
    if (!ua || !ua.isRegistered()) {
      els.dialError.textContent = "The phone is not registered yet.";
      return;
    }
    els.callButton.disabled = true; // one call at a time, also while the microphone opens
    try {
      localStream = await microphone();
    } catch (err) {
      els.callButton.disabled = false;
      return;
    }
    if (!ua || session) {
      localStream.getTracks().forEach((t) => t.stop());
      localStream = null;
      els.callButton.disabled = Boolean(session);
      return;
    }
    let s;
    try {
      s = ua.call(target, {
        mediaStream: localStream,
        mediaConstraints: { audio: true, video: false },
        pcConfig: { iceServers: [] },
      });
    } catch (err) {
      endCall(`Call failed: ${clean(err.message, 120)}`);
      return;
    }
    session = s;
    wireSession(s);
    if (s.connection) attachAudio(s.connection);
    showCall(s, "Calling…");
  }

  function pressKey(key) {
    if (session && session.isEstablished()) {
      session.sendDTMF(key, { transportType: JsSIP.C.DTMF_TRANSPORT.RFC2833, duration: 160, interToneGap: 80 });
      const keys = `${els.dtmfSent.dataset.keys || ""}${key}`.slice(-20);
      els.dtmfSent.dataset.keys = keys;
      els.dtmfSent.textContent = `Sent: ${keys}`;
      return;
    }
    els.number.value = (els.number.value + key).slice(0, 40);
    els.number.focus();
  }

  function toggleHold() {
    if (!session || !session.isEstablished()) return;
    if (session.isOnHold().local) session.unhold();
    else session.hold();
  }

  function toggleMute() {
    if (!session || !session.isEstablished()) return;
    if (session.isMuted().audio) session.unmute({ audio: true });
    else session.mute({ audio: true });
  }

  function transfer(event) {
    event.preventDefault();
    if (!session || !session.isEstablished()) return;
    const target = els.transferTo.value.replace(/[\s().-]/g, "");
    if (!DIALLABLE.test(target)) {
      els.callState.textContent = "Enter the number to transfer to.";
      els.transferTo.focus();
      return;
    }
    const s = session;
    els.callState.textContent = `Transferring to ${target}…`;
    s.refer(target, {
      eventHandlers: {
        requestFailed: (e) => {
          if (s === session) els.callState.textContent = `Transfer refused: ${responseReason(e)}`;
        },
        accepted: () => {
          if (s === session) s.terminate();
        },
        failed: (e) => {
          if (s === session) els.callState.textContent = `Transfer failed: ${responseReason(e)}`;
        },
      },
    });
  }

  // --- do not disturb -------------------------------------------------------------------------

  async function loadDnd() {
    try {
      const data = await postJson(root.dataset.dndUrl, "GET");
      els.dnd.checked = Boolean(data.dnd);
      els.dnd.disabled = false;
    } catch (err) {
      els.dndNote.textContent = `Unavailable: ${clean(err.message, 120)}`;
    }
  }

  async function saveDnd() {
    const wanted = els.dnd.checked;
    els.dnd.disabled = true;
    try {
      const data = await postJson(root.dataset.dndUrl, "PUT", { dnd: wanted });
      els.dnd.checked = Boolean(data.dnd);
      els.dndNote.textContent = data.dnd ? "Calls to you do not ring." : "Calls ring again.";
    } catch (err) {
      els.dnd.checked = !wanted;
      els.dndNote.textContent = `Not saved: ${clean(err.message, 120)}`;
    } finally {
      els.dnd.disabled = false;
    }
  }

  // --- wiring ---------------------------------------------------------------------------------

  els.dialForm.addEventListener("submit", dial);
  els.accept.addEventListener("click", accept);
  els.reject.addEventListener("click", reject);
  els.hangup.addEventListener("click", () => {
    if (session) session.terminate();
  });
  els.hold.addEventListener("click", toggleHold);
  els.mute.addEventListener("click", toggleMute);
  els.transferForm.addEventListener("submit", transfer);
  els.useHere.addEventListener("click", useHere);
  els.dnd.addEventListener("change", saveDnd);
  root.querySelectorAll("[data-key]").forEach((button) => {
    button.addEventListener("click", () => pressKey(button.dataset.key));
  });
  const popout = document.querySelector("[data-popout]");
  if (popout) {
    popout.addEventListener("click", (event) => {
      const win = window.open(popout.href, "pbx-softphone", "popup,width=400,height=720");
      if (win) event.preventDefault(); // else (blocked): the link opens it as a tab
    });
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") loadDnd(); // changed from a desk phone (*78)?
  });
  window.addEventListener("pagehide", () => {
    if (ua) stopPhone(true);
  });

  loadDnd();
  elect();
})();
