// The contact centre's wallboard, live over its WebSocket (/ws/portal/wallboard/, the portal
// session): the page is rendered from the payload on load; the socket sends the payload on
// connect (so nothing that changed meanwhile is missed) and a "wallboard.update" frame
// whenever the fan-out handled queue events or agents' calls. No polling: the one timer only
// moves the waiting-time counters on between frames. Markup as _queue_board.html. The socket
// itself (reconnects, the connection indicator) is livesocket.js's, shared with live status.
(() => {
  "use strict";
  const board = document.getElementById("wallboard");
  if (!board) return;
  const status = document.querySelector("[data-testid=wb-status]");
  const labels = JSON.parse(document.getElementById("wb-labels").textContent || "{}");
  const modes = JSON.parse(document.getElementById("wb-modes").textContent || "[]");
  const csrf = (document.getElementById("wb-csrf") || {}).value || "";
  const supervisor = board.dataset.supervisor || "";
  const superviseUrl = board.dataset.superviseUrl;
  const order = Object.keys(labels);
  // The server's clock minus ours (seconds), from the payload's "at": counters use its time.
  let skew = parseFloat(board.dataset.at || "0") - Date.now() / 1000;
  const { connect, setConnection } = window.portalLiveSocket("/ws/portal/wallboard/", "wallboard", onMessage);

  function duration(seconds) {
    const total = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const ss = String(s).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === false || v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function figure(label, testid, value, attrs) {
    return el("div", {}, el("dt", { text: label }), el("dd", { "data-testid": testid, ...(attrs || {}) }, ...value));
  }

  function superviseButtons(q, a) {
    if (!supervisor || a.state !== "on_call") return [];
    return modes.map(([mode, text]) => {
      const form = el("form", { method: "post", action: superviseUrl, class: "inline", "data-supervise": true },
        el("input", { type: "hidden", name: "csrfmiddlewaretoken", value: csrf }),
        el("input", { type: "hidden", name: "queue", value: q.number }),
        el("input", { type: "hidden", name: "agent", value: a.number }),
        el("input", { type: "hidden", name: "mode", value: mode }),
        el("button", { "data-testid": `wb-${mode}-${q.number}-${a.number}`, "aria-label": `${text}: ${a.number}`, text }));
      return form;
    });
  }

  function renderQueue(q, at) {
    const n = q.number;
    const alerts = el("div", { class: "wbalerts", role: "alert", "data-testid": `wb-alerts-${n}` },
      ...(q.alerts || []).map((text) => el("p", { class: "wbalert", text })));
    const sl = q.service_level === null || q.service_level === undefined ? "—" : `${q.service_level}%`;
    const figures = el("dl", { class: "wbfigures" },
      figure("Waiting", `wb-waiting-${n}`, [q.waiting]),
      figure("Longest wait", `wb-longest-${n}`, [duration(q.longest_wait)], { "data-wait": q.longest_wait, "data-tick": q.waiting > 0 }),
      figure("Answered today", `wb-answered-${n}`, [q.answered]),
      figure("Abandoned today", `wb-abandoned-${n}`, [q.abandoned]),
      figure("Service level", `wb-sl-${n}`, [`${sl} `, el("span", { class: "note small", text: `target ${q.sla_percent}% in ${q.sla_seconds} s` })]));
    const agents = el("dl", { class: "wbagents" },
      ...order.map((key) => figure(labels[key], `wb-agents-${n}-${key}`, [(q.agents || {})[key] || 0])));
    const callers = (q.callers || []).map((c, i) => el("tr", { "data-testid": `wb-caller-${n}-${i + 1}` },
      el("td", { text: i + 1 }),
      el("td", {}, c.caller || "unknown", c.caller_name ? " " : null, c.caller_name ? el("span", { class: "note", text: c.caller_name }) : null,
        c.vip ? " " : null, c.vip ? el("span", { class: "badge", text: "VIP" }) : null,
        c.callback ? " " : null, c.callback ? el("span", { class: "badge", text: "callback" }) : null),
      el("td", { "data-since": c.since, "data-tick": true, text: c.since ? duration(at - c.since) : "" })));
    if (!callers.length) callers.push(el("tr", {}, el("td", { colspan: 3, class: "empty", text: "Nobody is waiting." })));
    const people = (q.agent_list || []).map((a) => el("tr", { "data-testid": `wb-agent-${n}-${a.number}` },
      el("td", {}, `${a.number} `, el("span", { class: "note", text: a.name || "" })),
      el("td", {}, el("span", { class: `badge badge--${a.state}`, "data-testid": `wb-state-${n}-${a.number}`, text: labels[a.state] || a.state }),
        a.reason ? " " : null, a.reason ? el("span", { class: "note", text: a.reason }) : null),
      el("td", a.since ? { "data-since": a.since, "data-tick": true, text: duration(at - a.since) } : {}),
      el("td", { class: "actions" }, ...superviseButtons(q, a))));
    if (!people.length) people.push(el("tr", {}, el("td", { colspan: 4, class: "empty", text: "No agents." })));
    const head = (...names) => el("thead", {}, el("tr", {}, ...names.map(([text, cls]) => el("th", { scope: "col", class: cls, text }))));
    return el("section", { class: `card wbqueue${q.alert ? " wbqueue--alert" : ""}`, "data-queue": n, "data-testid": `wb-queue-${n}`, "aria-labelledby": `wbq-${n}` },
      el("h2", { id: `wbq-${n}`, text: `${n} ${q.name}` }),
      alerts, figures, agents,
      el("div", { class: "twocol" },
        el("table", { class: "list compact", "data-testid": `wb-callers-${n}` }, el("caption", { text: "Callers waiting" }),
          head(["#"], ["Caller"], ["Waiting"]), el("tbody", {}, ...callers)),
        el("table", { class: "list compact", "data-testid": `wb-agent-list-${n}` }, el("caption", { text: "Agents" }),
          head(["Agent"], ["State"], ["For"], ["Supervise", "actions"]), el("tbody", {}, ...people))));
  }

  function render(payload) {
    skew = payload.at - Date.now() / 1000;
    board.dataset.at = payload.at;
    const sections = (payload.queues || []).map((q) => {
      const section = renderQueue(q, payload.at);
      // Keep an alert region that says the same thing: a screen reader announces changes only.
      const old = board.querySelector(`[data-testid="wb-alerts-${q.number}"]`);
      const fresh = section.querySelector(`[data-testid="wb-alerts-${q.number}"]`);
      if (old && old.textContent === fresh.textContent) fresh.replaceWith(old);
      return section;
    });
    if (!sections.length) sections.push(el("p", { class: "empty", "data-testid": "wb-empty", text: "No queues to show yet." }));
    board.replaceChildren(...sections);
  }

  function tick() {
    const now = Date.now() / 1000 + skew;
    const at = parseFloat(board.dataset.at || "0");
    for (const node of board.querySelectorAll("[data-tick]")) {
      if (node.dataset.since) node.textContent = duration(now - parseFloat(node.dataset.since));
      else if (node.dataset.wait) node.textContent = duration(parseFloat(node.dataset.wait) + (now - at));
    }
  }

  function onMessage(message) {
    if (message.type === "wallboard" || message.type === "wallboard.update") {
      render(message.wallboard);
      setConnection("live", "live");
    } else if (message.type === "error") {
      setConnection("error", message.message || "error");
    }
  }

  // Listen / Whisper / Barge: sent without leaving the page (the board stays live).
  board.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-supervise]");
    if (!form) return;
    event.preventDefault();
    const response = await fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch", "X-CSRFToken": csrf },
      credentials: "same-origin",
    });
    let body = {};
    try { body = await response.json(); } catch (err) { body = {}; }
    if (status) status.textContent = body.message || (response.ok ? "Done." : "That did not work.");
  });

  window.setInterval(tick, 1000);
  connect();
})();
