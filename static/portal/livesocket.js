// The WebSocket of the portal's live pages (live.js: live status; wallboard.js: the contact
// centre's wallboard), loaded before them. portalLiveSocket(path, name, onMessage) opens
// ws(s)://<this host><path>, hands each frame (parsed JSON) to onMessage, shows the state on
// the page's [data-live-indicator], reconnects with a back-off (not polling) unless the
// session is gone (4401/4403/4404) and closes when the page is left. Returns
// {connect, setConnection}: the page calls connect() once it is ready.
window.portalLiveSocket = (path, name, onMessage) => {
  "use strict";
  const indicator = document.querySelector("[data-live-indicator]");
  let socket = null;
  let retryMs = 1000;
  let stopped = false;

  function setConnection(state, text) {
    if (!indicator) return;
    indicator.dataset.state = state;
    const label = indicator.querySelector(".live-text");
    if (label) label.textContent = text;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${path}`);
    setConnection("connecting", "connecting…");
    socket.addEventListener("open", () => { retryMs = 1000; });
    socket.addEventListener("message", (e) => {
      try {
        onMessage(JSON.parse(e.data));
      } catch (err) {
        console.error(`${name}: bad frame`, err);
      }
    });
    socket.addEventListener("close", (e) => {
      if (stopped) return;
      if (e.code === 4401 || e.code === 4403 || e.code === 4404) {
        setConnection("error", "signed out — reload the page");
        return; // a new session is needed; retrying would not help
      }
      setConnection("offline", "reconnecting…");
      window.setTimeout(connect, retryMs); // back-off between reconnect attempts, not polling
      retryMs = Math.min(retryMs * 2, 30000);
    });
  }

  window.addEventListener("pagehide", () => {
    stopped = true;
    if (socket) socket.close();
  });
  return { connect, setConnection };
};
