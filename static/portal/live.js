// Live status over the portal's WebSocket (/portal/ws/live/, the signed-in session): the page
// is rendered from the live-state cache, then the socket's snapshot (sent on every connect, so
// nothing that changed meanwhile is missed) and its events keep it current. No polling. The
// socket itself (reconnects, the connection indicator) is livesocket.js's, as the wallboard's.
// Rows: <tr data-ext="101"> on the extensions list, <tr data-call="..."> on active calls,
// <tr data-slot="701"> in its parked calls (the engines' park slots; call.parked/unparked).
(() => {
  "use strict";
  const extTable = document.querySelector('[data-live-table="extensions"]');
  const callTable = document.querySelector('[data-live-table="calls"]');
  const parkTable = document.querySelector('[data-live-table="parked"]');
  const groupsData = document.getElementById("live-groups");
  let groups = groupsData ? JSON.parse(groupsData.textContent || "{}") : {}; // number -> name
  const parked = new Map(); // slot -> {slot, call_id, caller, caller_name, by, at}
  if (!extTable && !callTable) return;
  const calls = new Map(); // call id -> {call_id, state, caller, callee, caller_name, started_at}
  const { connect, setConnection } = window.portalLiveSocket("/portal/ws/live/", "live", onMessage);

  function statusLabel(entry) {
    if (entry.call_status === "on_call") return "on call";
    if (entry.call_status === "ringing") return "ringing";
    return entry.online ? "online" : "offline";
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ------------------------------------------------------------------ extensions list
  function renderExtension(entry) {
    const row = extTable.querySelector(`tr[data-ext="${CSS.escape(entry.extension)}"]`);
    if (!row) return; // not on this page
    const label = statusLabel(entry);
    const status = row.querySelector('[data-live="status"]');
    status.textContent = label;
    status.className = "presence presence--" + label.replace(" ", "-");
    const dnd = row.querySelector('[data-live="dnd"]');
    if (dnd && typeof entry.dnd === "boolean") dnd.hidden = !entry.dnd;
    const cell = row.querySelector('[data-live="devices"]');
    const devices = entry.devices || [];
    if (!devices.length) {
      cell.replaceChildren(el("span", "note", "—"));
      return;
    }
    cell.replaceChildren(
      ...devices.map((d) => {
        const line = el("div", "device");
        line.append(el("code", "", `${(d.transport || "").toUpperCase()} ${d.address}:${d.port}`));
        if (d.user_agent) line.append(" ", el("span", "ua", d.user_agent));
        return line;
      }),
    );
  }

  function applyExtensionSnapshot(extensions) {
    extTable.querySelectorAll("tr[data-ext]").forEach((row) => {
      const number = row.dataset.ext;
      const entry = extensions[number] || {
        extension: number, online: false, devices: [], call_status: "",
      };
      renderExtension(entry);
    });
  }

  // ------------------------------------------------------------------ active calls
  const STATES = {
    "call.started": "started", "call.ringing": "ringing",
    "call.answered": "answered", "call.transferred": "answered",
    "call.picked_up": "answered", "call.parked": "parked",
  };

  // Whether the event changed the parked calls (most call events do not: nothing to redraw).
  function applyParkEvent(type, data, occurredAt) {
    if (type === "call.parked" && data.slot) {
      const call = calls.get(data.call_id) || {};
      parked.set(data.slot, {
        slot: data.slot, call_id: data.call_id, by: data.by || "",
        caller: data.caller || call.caller || "", caller_name: data.caller_name || call.caller_name || "",
        at: Date.parse(occurredAt) / 1000 || Date.now() / 1000,
      });
      return true;
    }
    if (type === "call.unparked" && data.slot) return parked.delete(data.slot);
    if (type === "call.ended") {
      let changed = false;
      for (const [slot, entry] of parked) {
        if (entry.call_id === data.call_id) changed = parked.delete(slot);
      }
      return changed;
    }
    return false;
  }

  // A caller's cell (number, then name) and a time's, in the tenant's time zone as the server
  // renders it (not the browser's): shared by the calls and the parked calls.
  function callerCell(entry) {
    const cell = el("td", "", entry.caller);
    if (entry.caller_name) cell.append(" ", el("span", "note", entry.caller_name));
    return cell;
  }

  function timeCell(seconds, table) {
    const timeZone = table.dataset.timeZone || undefined;
    return el("td", "", new Date(seconds * 1000).toLocaleTimeString([], { hour12: false, timeZone }));
  }

  function applyCallEvent(type, data, occurredAt) {
    if (!data.call_id) return;
    if (type === "call.ended" || (type === "call.unparked" && data.reason === "hangup")) {
      calls.delete(data.call_id);
      return;
    }
    const call = calls.get(data.call_id) || {
      call_id: data.call_id, started_at: Date.parse(occurredAt) / 1000 || Date.now() / 1000,
    };
    call.state = STATES[type] || call.state;
    call.caller = call.caller || data.caller || "";
    call.caller_name = call.caller_name || data.caller_name || "";
    call.callee = (type === "call.transferred" && data.to) || data.callee || call.callee || "";
    call.called = call.called || data.called || call.callee;
    if (type === "call.picked_up") call.picked_up_by = data.by || "";
    if (type === "call.recording") {
      if (data.state === "recording" || data.state === "paused") call.recording = data.state;
      else delete call.recording;
    }
    if (type === "call.parked") call.parked = { slot: data.slot || "", by: data.by || "" };
    if (type === "call.unparked") {
      const parker = (call.parked || {}).by;
      delete call.parked;
      if (data.reason === "timeout") {
        call.state = "ringing";
        call.callee = data.by || parker || call.callee;
      } else {
        call.state = "answered";
      }
    }
    calls.set(data.call_id, call);
  }

  function renderCalls() {
    const body = callTable.tBodies[0];
    const empty = body.querySelector(".empty-row");
    const base = callTable.dataset.hangupBase;
    body.querySelectorAll("tr[data-call]").forEach((row) => row.remove());
    const sorted = [...calls.values()].sort((a, b) => a.started_at - b.started_at);
    for (const call of sorted) {
      const row = el("tr");
      row.dataset.call = call.call_id;
      row.dataset.testid = `call-${call.call_id}`;
      const state = el("td");
      state.append(el("span", `badge badge--${call.state}`, call.state));
      if (call.parked && call.parked.slot) {
        state.append(" ", el("span", "note", `in slot ${call.parked.slot}`));
      } else if (call.picked_up_by) {
        state.append(" ", el("span", "note", `picked up by ${call.picked_up_by}`));
      }
      if (call.recording) {
        const rec = el("span", `badge badge--rec badge--rec-${call.recording}`,
          call.recording === "paused" ? "recording paused" : "recording");
        rec.dataset.testid = "call-recording";
        state.append(" ", rec);
      }
      const callee = el("td", "", call.callee);
      const group = groups[call.called];
      if (group) callee.append(" ", el("span", "note", `${group} (${call.called})`));
      row.append(callerCell(call), callee, state, timeCell(call.started_at, callTable));
      if (base) {
        const cell = el("td", "actions");
        const button = el("button", "danger", "Hang up");
        button.dataset.hangup = call.call_id;
        button.dataset.confirm = "Hang up this call?";
        cell.append(button);
        row.append(cell);
      }
      body.insertBefore(row, empty);
    }
    if (empty) empty.hidden = calls.size > 0;
  }

  function renderParked() {
    const body = parkTable.tBodies[0];
    const empty = body.querySelector(".empty-row");
    body.querySelectorAll("tr[data-slot]").forEach((row) => row.remove());
    const sorted = [...parked.values()].sort(
      (a, b) => a.slot.length - b.slot.length || a.slot.localeCompare(b.slot));
    for (const entry of sorted) {
      const row = el("tr");
      row.dataset.slot = entry.slot;
      row.dataset.testid = `parked-${entry.slot}`;
      const slot = el("td");
      slot.append(el("code", "", entry.slot));
      row.append(slot, callerCell(entry), timeCell(entry.at, parkTable), el("td", "", entry.by));
      body.insertBefore(row, empty);
    }
    if (empty) empty.hidden = parked.size > 0;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (_) {
      return "";
    }
  }

  async function hangup(button) {
    const id = button.dataset.hangup;
    button.disabled = true;
    button.textContent = "Hanging up…";
    const response = await fetch(
      `${callTable.dataset.hangupBase}${encodeURIComponent(id)}/hangup/`,
      {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
      },
    );
    if (response.status === 404) {
      calls.delete(id); // already over; call.ended may have raced us
      renderCalls();
    } else if (!response.ok) {
      button.disabled = false;
      button.textContent = "Hang up";
    }
    // On 202 the row goes when the engine reports call.ended.
  }

  // ------------------------------------------------------------------ the socket
  function onMessage(message) {
    if (message.type === "snapshot") {
      if (extTable) applyExtensionSnapshot(message.data.extensions || {});
      if (message.data.groups) groups = message.data.groups;
      if (callTable) {
        calls.clear();
        for (const call of message.data.calls || []) calls.set(call.call_id, call);
        renderCalls();
      }
      if (parkTable) {
        parked.clear();
        for (const entry of message.data.parked || []) parked.set(entry.slot, entry);
        renderParked();
      }
      setConnection("live", "live");
    } else if (message.type === "event") {
      const event = message.event;
      if (event.topic === "extension.status" && extTable) renderExtension(event.data);
      if (event.topic === "calls" && callTable) {
        applyCallEvent(event.type, event.data, event.occurred_at);
        renderCalls();
      }
      if (event.topic === "calls" && parkTable && applyParkEvent(event.type, event.data, event.occurred_at)) {
        renderParked();
      }
    } else if (message.type === "error") {
      setConnection("error", message.message || "error");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    // Registered after portal.js's confirm handler, so a cancelled confirm is seen here.
    if (callTable) {
      callTable.addEventListener("click", (event) => {
        const button = event.target.closest("[data-hangup]");
        if (button && !event.defaultPrevented) hangup(button);
      });
    }
  });
  connect();
})();
