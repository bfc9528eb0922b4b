// The rota console: an agent's panel, the supervisors' wallboard, the back office's tasks,
// notifications and scripts, as one page over the JSON API (`/v1`), kept live by the event
// stream. No build step and no library: what the browser ships is enough. The token is the
// API's; every view shows what the API lets that token see.

const view = document.getElementById("view");
const problem = document.getElementById("problem");
let token = sessionStorage.getItem("rota-token");
// Stops the event stream of the view on screen, when leaving it.
let stopStream = null;

/** Calls the API; the problem document's message on a refusal. */
async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error((data && (data.message || data.detail)) || `${res.status} ${res.statusText}`);
  return data;
}

/** Runs an action, shows what went wrong if it did, and redraws. */
async function act(method, path, body) {
  try {
    await api(method, path, body);
    say(null);
  } catch (e) {
    say(e.message);
  }
  await redraw();
}

function say(message) {
  problem.hidden = !message;
  problem.textContent = message || "";
}

/** Follows `/v1/events` (read as a stream, so the token goes in a header); `changed` after
 *  each event, at most every 200 ms. Reconnects after a drop. Returns the stop. */
function follow(query, changed) {
  const stop = new AbortController();
  let pending = null;
  const soon = () => {
    if (!pending) pending = setTimeout(() => { pending = null; changed(); }, 200);
  };
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const res = await fetch(`/v1/events${query}`, { headers: { Authorization: `Bearer ${token}` }, signal: stop.signal });
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let text = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          text += value;
          let end;
          while ((end = text.indexOf("\n\n")) >= 0) {
            const event = text.slice(0, end);
            text = text.slice(end + 2);
            if (event.split("\n").some((l) => l.startsWith("data:"))) soon();
          }
        }
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
  return () => stop.abort();
}

/** `ms` as m:ss (or h:mm:ss). */
function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [h, m, sec] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${m}:${pad(sec)}`;
}

/** Element `tag` with attributes (`on*` are listeners) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== false && v !== null && v !== undefined) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return node;
}

/** Every element with `data-since` (an RFC 3339 time) shows the time since it; with
 *  `data-until`, the time left until it. */
function tick() {
  const now = Date.now();
  for (const t of document.querySelectorAll("[data-since]")) t.textContent = clock(now - Date.parse(t.dataset.since));
  for (const t of document.querySelectorAll("[data-until]")) t.textContent = clock(Date.parse(t.dataset.until) - now);
}

// The notifications whose attempts are shown.
const openNotifications = new Set();

// The view shown: its draw function, called again on every change.
let redraw = async () => {};

const views = {
  async agent(id) {
    if (!id) {
      const { agents } = await api("GET", "/v1/agents?limit=1000");
      return [
        el("h1", {}, "Agent panel"),
        el("section", {}, el("p", {}, "Whose panel?"),
          el("ul", {}, agents.map((a) => el("li", {}, el("a", { href: `#/agent/${encodeURIComponent(a.id)}` }, a.name, " ", el("span", { class: "muted" }, `(${a.id}, ${a.unit})`)))))),
      ];
    }
    const path = `/v1/agents/${encodeURIComponent(id)}`;
    const [a, { presences }, { pause_causes }] = await Promise.all([api("GET", path), api("GET", "/v1/presences"), api("GET", "/v1/pause_causes")]);
    // What rings for her (an offer is not yet hers to hold).
    let offered = null;
    if (a.state === "offered") {
      const { conversations } = await api("GET", `/v1/conversations?agent=${encodeURIComponent(a.id)}&status=offered`);
      offered = conversations.length ? conversations[0].id : null;
    }
    let wrapUp = null;
    if (a.state === "post_processing") {
      const { timers } = await api("GET", "/v1/timers?kind=wrap_up_end&limit=1000");
      wrapUp = timers.find((t) => t.subject === a.id);
    }
    const statuses = [["dnd", "DnD"], ["ready", "Ready"], ["callcenter", "Callcenter"]];
    const causeText = (c) => (pause_causes.find((p) => p.id === c) || { text: c }).text;
    return [
      el("h1", {}, a.name, " ", el("span", { class: "muted" }, `(${a.id}, ${a.unit})`)),
      el("section", { "aria-labelledby": "state-heading" },
        el("h2", { id: "state-heading" }, "Now"),
        el("p", {},
          el("span", { id: "state", class: `state ${a.state}` }, a.state.replace("_", " ")),
          el("span", { class: "timer", "aria-label": "time in state", id: "time-in-state", "data-since": a.state_since }, clock(a.time_in_state_ms)),
          a.pause_cause ? el("span", { class: "muted" }, ` — ${causeText(a.pause_cause)}`) : "",
          wrapUp ? el("span", {}, " — wrap-up ends in ", el("span", { id: "wrap-up", class: "timer", "data-until": wrapUp.due }, "")) : ""),
        el("p", { class: "muted" }, a.online ? `Signed in — ${a.presence_text || a.presence}` : "Signed out", a.unavailable ? ` — cannot take work: ${a.unavailable}` : ""),
        offered ? el("div", { class: "row", id: "offer" },
          el("strong", {}, `Offered: ${offered}`),
          el("button", { class: "primary", id: "accept", onclick: () => act("POST", `/v1/conversations/${encodeURIComponent(offered)}/accept`, { agent: a.id }) }, "Accept"),
          el("button", { id: "decline", onclick: () => act("POST", `/v1/conversations/${encodeURIComponent(offered)}/decline`, { agent: a.id }) }, "Decline")) : "",
        a.state === "busy" && a.conversation ? el("div", { class: "row" },
          el("strong", {}, `Talking: ${a.conversation}`),
          el("button", { id: "close", onclick: () => act("POST", `/v1/conversations/${encodeURIComponent(a.conversation)}/close`, {}) }, "Close")) : ""),
      el("section", { "aria-labelledby": "status-heading" },
        el("h2", { id: "status-heading" }, "Status"),
        el("div", { class: "row", role: "group", "aria-label": "Status" },
          statuses.map(([s, text]) => el("button", { id: `status-${s}`, "aria-pressed": String(a.status === s), onclick: () => act("PUT", `${path}/status`, { status: s }) }, text))),
        el("div", { class: "row" },
          a.online
            ? el("button", { id: "sign-out", onclick: () => act("POST", `${path}/sign_out`, {}) }, "Sign out")
            : el("button", { id: "sign-in", class: "primary", onclick: () => act("POST", `${path}/sign_in`, {}) }, "Sign in"),
          a.work_day
            ? el("button", { id: "end-day", onclick: () => act("POST", `${path}/work_day/end`, {}) }, "End the work day")
            : el("button", { id: "start-day", onclick: () => act("POST", `${path}/work_day/start`, {}) }, "Start the work day"))),
      el("section", { "aria-labelledby": "presence-heading" },
        el("h2", { id: "presence-heading" }, "Presence"),
        el("label", { for: "presence" }, "Show me as"),
        el("select", { id: "presence", onchange: (e) => act("PUT", `${path}/presence`, { presence: e.target.value }) },
          presences.filter((p) => p.selectable || p.id === a.presence).map((p) => el("option", { value: p.id, selected: p.id === a.presence }, p.text || p.id)))),
      el("section", { "aria-labelledby": "pause-heading" },
        el("h2", { id: "pause-heading" }, "Pause"),
        a.state === "paused"
          ? el("button", { id: "resume", class: "primary", onclick: () => act("POST", `${path}/resume`, {}) }, "Resume")
          : el("div", { class: "row" },
              el("label", { for: "pause-cause" }, "Cause"),
              el("select", { id: "pause-cause" }, pause_causes.map((c) => el("option", { value: c.id }, c.text))),
              el("button", { id: "pause", onclick: () => act("POST", `${path}/pause`, { cause: document.getElementById("pause-cause").value }) }, "Pause"))),
    ];
  },

  async wallboard() {
    const [{ agents }, { queues }] = await Promise.all([api("GET", "/v1/agents?limit=1000"), api("GET", "/v1/queues")]);
    const oldest = (q) => q.waiting.reduce((min, w) => (!min || w.queued_at < min ? w.queued_at : min), null);
    return [
      el("h1", {}, "Wallboard"),
      el("section", { "aria-labelledby": "queues-heading" },
        el("h2", { id: "queues-heading" }, "Queues"),
        el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, "Queue"), el("th", { class: "number" }, "Waiting"), el("th", { class: "number" }, "Oldest wait"), el("th", { class: "number" }, "Available"), el("th", { class: "wide" }, "Waiting conversations"))),
          el("tbody", {}, queues.map((q) => el("tr", {},
            el("td", {}, q.name || q.id),
            el("td", { class: "number", id: `waiting-${q.id}` }, q.waiting.length),
            el("td", { class: "number", id: `oldest-${q.id}` }, oldest(q) ? el("span", { "data-since": oldest(q) }, "") : "—"),
            el("td", { class: "number", id: `available-${q.id}` }, q.available.length),
            el("td", { class: "wide" }, q.waiting.map((w) => el("a", { href: `#/conversation/${encodeURIComponent(w.id)}` }, w.id, " ")))))))),
      el("section", { "aria-labelledby": "agents-heading" },
        el("h2", { id: "agents-heading" }, "Agents"),
        el("table", {},
          el("thead", {}, el("tr", {}, el("th", {}, "Agent"), el("th", {}, "State"), el("th", { class: "wide" }, "Presence"), el("th", { class: "number" }, "In state"))),
          el("tbody", {}, agents.map((a) => el("tr", {},
            el("td", {}, el("a", { href: `#/agent/${encodeURIComponent(a.id)}` }, a.name)),
            el("td", {}, el("span", { class: `state ${a.state}` }, a.state.replace("_", " "))),
            el("td", { class: "wide" }, a.online ? a.presence_text || a.presence : "signed out"),
            el("td", { class: "number" }, el("span", { "data-since": a.state_since }, clock(a.time_in_state_ms)))))))),
    ];
  },

  /** A conversation and its decisions, readably: who was chosen, and why not the others. */
  async conversation(id) {
    const c = await api("GET", `/v1/conversations/${encodeURIComponent(id)}`);
    return [
      el("h1", {}, `Conversation ${c.id}`),
      el("section", {}, el("p", {}, `${c.status} in ${c.queue}`, c.agent ? ` — with ${c.agent}` : "")),
      el("section", { "aria-labelledby": "trace-heading" },
        el("h2", { id: "trace-heading" }, "Why this agent, why not the others"),
        (c.traces || []).length === 0 ? el("p", { class: "muted" }, "No decision yet.") : "",
        el("ol", {}, (c.traces || []).map((t) => el("li", {},
          el("p", {}, el("strong", {}, t.policy || "policy"), ": ", typeof t.decision === "string" ? t.decision : JSON.stringify(t.decision ?? ""), t.cause ? el("span", { class: "muted" }, ` (${t.cause})`) : ""),
          (t.skipped || []).length ? el("ul", {}, t.skipped.map((s) => el("li", {}, `${s.agent}: ${s.reason}`))) : "",
          t.error ? el("pre", {}, t.error) : "")))),
    ];
  },

  async tasks() {
    const { tasks, flagged } = await api("GET", "/v1/tasks?limit=1000");
    return [
      el("h1", {}, "Back office"),
      el("section", { "aria-labelledby": "tasks-heading" },
        el("h2", { id: "tasks-heading" }, `Open tasks (${tasks.length})`),
        tasks.length === 0 ? el("p", { class: "muted", id: "no-tasks" }, "Nothing to do.") : "",
        el("table", {},
          el("tbody", {}, tasks.map((t) => el("tr", { id: `task-${t.id}` },
            el("td", {}, el("strong", {}, t.title), el("div", { class: "muted" }, `${t.workflow}, stage ${t.stage} — conversation ${t.conversation}`)),
            el("td", { class: "number" }, el("span", { "data-since": t.opened }, clock(t.age_ms))),
            el("td", {}, el("div", { class: "row" }, t.buttons.map((b) => el("button", { onclick: () => act("POST", `/v1/tasks/${t.id}/push`, { button: b }) }, b))))))))),
      el("section", { "aria-labelledby": "flagged-heading" },
        el("h2", { id: "flagged-heading" }, `Flagged workflow instances (${flagged.length})`),
        el("ul", {}, flagged.map((i) => el("li", {}, `${i.workflow} #${i.id} — ${i.flag || i.status}`)))),
    ];
  },

  /** Standby duty: who is on duty for each schedule and until when, and the notifications
   *  sent, each attempt at them shown on opening it, dead ones retried. */
  async standby() {
    const [{ schedules }, { notifications }] = await Promise.all([api("GET", "/v1/schedules"), api("GET", "/v1/notifications?limit=200")]);
    // Each attempt of the ones opened (kept open when the view is drawn again).
    const attempts = async (details, id) => {
      if (!details.open) return openNotifications.delete(id);
      openNotifications.add(id);
      const box = details.querySelector(".attempts");
      if (box.childElementCount) return;
      const n = await api("GET", `/v1/notifications/${id}`);
      box.replaceChildren(...n.attempts_log.map((a) => el("li", {}, `${new Date(a.at).toLocaleString()} — ${a.outcome}: ${a.detail}`)));
    };
    return [
      el("h1", {}, "Standby"),
      el("section", { "aria-labelledby": "duty-heading" },
        el("h2", { id: "duty-heading" }, "On duty now"),
        schedules.length === 0 ? el("p", { class: "muted" }, "No schedules.") : "",
        el("table", {},
          el("tbody", {}, schedules.map((s) => el("tr", { id: `schedule-${s.schedule}` },
            el("td", {}, s.schedule),
            el("td", {}, s.on_duty ? s.on_duty.agents.join(", ") : el("span", { class: "muted" }, "nobody")),
            el("td", { class: "wide muted" }, s.on_duty ? s.on_duty.source : ""),
            el("td", {}, s.on_duty && s.on_duty.until ? el("span", {}, "hands off in ", el("span", { "data-until": s.on_duty.until }, "")) : "")))))),
      el("section", { "aria-labelledby": "notifications-heading" },
        el("h2", { id: "notifications-heading" }, "Notifications"),
        notifications.length === 0 ? el("p", { class: "muted" }, "None sent.") : "",
        notifications.map((n) => el("details", { id: `notification-${n.id}`, open: openNotifications.has(n.id), ontoggle: (e) => attempts(e.target, n.id) },
          el("summary", {}, `#${n.id} ${n.status} — ${n.recipient} by ${n.channel}, ${n.attempts} attempt(s)`, n.last_error ? `: ${n.last_error}` : ""),
          el("ol", { class: "attempts" }),
          n.status === "dead" ? el("button", { onclick: () => act("POST", `/v1/notifications/${n.id}/retry`, {}) }, "Retry") : ""))),
    ];
  },

  async scripts() {
    const s = await api("GET", "/v1/scripts");
    return [
      el("h1", {}, `Scripts — generation ${s.generation}`),
      s.last_error ? el("section", {}, el("h2", {}, "The last reload was refused; this generation keeps running"),
        el("pre", { id: "reload-error" }, s.last_error.map((d) => `${d.file}${d.line ? `:${d.line}` : ""}: ${d.message}`).join("\n"))) : "",
      el("section", {}, el("h2", {}, "Files"), el("ul", {}, s.files.map((f) => el("li", {}, f)))),
    ];
  },
};

/** Shows the view the address names (`#/agent/olga`, `#/wallboard`, ...). */
async function route() {
  if (stopStream) stopStream();
  stopStream = null;
  if (!token) return;
  document.getElementById("sign-out-token").hidden = false;
  const [name, arg] = (location.hash.replace(/^#\/?/, "") || "wallboard").split("/").map(decodeURIComponent);
  const draw = views[name] || views.wallboard;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.id === `nav-${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  redraw = async () => {
    try {
      const nodes = await draw(arg);
      // Keep focus on the control the user used, when it is drawn again.
      const focused = document.activeElement && document.activeElement.id;
      view.replaceChildren(...nodes);
      if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      tick();
    } catch (e) {
      say(e.message);
    }
  };
  await redraw();
  const query = name === "agent" && arg ? `?agent=${encodeURIComponent(arg)}` : "";
  stopStream = follow(query, () => redraw());
}

document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("rota-token", token);
  route();
});
document.getElementById("sign-out-token").addEventListener("click", () => {
  sessionStorage.removeItem("rota-token");
  location.reload();
});
window.addEventListener("hashchange", route);
setInterval(tick, 1000);
route();
