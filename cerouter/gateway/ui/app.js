// The live page: plain DOM, no framework. Everything from events is written with textContent.
"use strict";

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token");
const MAX_ITEMS = 100;
const RETRY_MS = 2000;

function url(path, query) {
  const q = new URLSearchParams(query || {});
  if (TOKEN) q.set("token", TOKEN);
  const text = q.toString();
  return text ? `${path}?${text}` : path;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setStatus(id, text, state) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.className = `status ${state || ""}`;
}

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

// Server-Sent Events read with fetch: any event name (events are named by their CloudEvents
// type), and a feed that can be aborted to change its filter.
async function readEvents(address, onEvent, signal) {
  const response = await fetch(address, { signal, headers: { accept: "text/event-stream" } });
  if (!response.ok) {
    let detail = `HTTP ${response.status}`;
    try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new HttpError(response.status, detail);
  }
  onEvent("open", null, null);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let id = null;
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "event") name = text;
        else if (field === "data") data.push(text);
        else if (field === "id") id = text;
      }
      if (data.length) onEvent(name, data.join("\n"), id);
    }
  }
}

// Follow a feed until aborted: reconnect after a lost connection, stop on a 4xx answer.
function follow(address, onEvent, statusId) {
  const controller = new AbortController();
  (async () => {
    while (!controller.signal.aborted) {
      try {
        await readEvents(address, onEvent, controller.signal);
        setStatus(statusId, "reconnecting…", "");
      } catch (error) {
        if (controller.signal.aborted) return;
        if (error instanceof HttpError && error.status >= 400 && error.status < 500) {
          setStatus(statusId, error.message, "error");
          return;
        }
        setStatus(statusId, `disconnected: ${error.message}; retrying`, "error");
      }
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  })();
  return controller;
}

// ------------------------------------------------------------------ counters

let previous = null;

function rate(now, before, seconds) {
  if (before === undefined || seconds <= 0) return "";
  return ((now - before) / seconds).toFixed(1);
}

function fillRows(tbody, rows) {
  const fresh = rows.map((cells) => {
    const tr = document.createElement("tr");
    for (const [text, className, key] of cells) {
      const td = el("td", text, className);
      if (key) td.dataset.key = key;
      tr.append(td);
    }
    return tr;
  });
  tbody.replaceChildren(...fresh);
}

function showStats(snapshot) {
  const seconds = previous ? snapshot.time - previous.time : 0;
  const before = new Map((previous ? previous.routes : []).map((r) => [r.name, r]));
  const routes = document.querySelector("#routes tbody");
  fillRows(routes, snapshot.routes.map((route) => [
    [route.name, "", "name"],
    [route.match, "code", "match"],
    [route.to.join("\n"), "code", "to"],
    [route.deliveries, "num", "deliveries"],
    [rate(route.deliveries, (before.get(route.name) || {}).deliveries, seconds), "num", "rate"],
    [route.failures, "num", "failures"],
  ]));
  routes.querySelectorAll("tr").forEach((tr, i) => { tr.dataset.route = snapshot.routes[i].name; });
  const outcomes = document.querySelector("#outcomes tbody");
  const names = Object.keys(snapshot.outcomes);
  fillRows(outcomes, names.map((name) => [
    [name, "", "name"],
    [snapshot.outcomes[name], "num", "count"],
    [rate(snapshot.outcomes[name], previous ? previous.outcomes[name] : undefined, seconds),
      "num", "rate"],
  ]));
  outcomes.querySelectorAll("tr").forEach((tr, i) => { tr.dataset.outcome = names[i]; });
  const reasons = document.querySelector("#reasons tbody");
  const entries = Object.entries(snapshot.deadletter_reasons);
  fillRows(reasons, entries.length
    ? entries.map(([reason, n]) => [[reason, "", "name"], [n, "num", "count"]])
    : [[["none yet", "muted"], ["", "num"]]]);
  document.getElementById("deadletter-stream").textContent = `(stream ${snapshot.deadletter_stream})`;
  previous = snapshot;
}

function prepend(list, item) {
  list.prepend(item);
  while (list.children.length > MAX_ITEMS) list.lastElementChild.remove();
}

function showDeadLetter(letter, id) {
  const item = el("li");
  item.dataset.seq = id || "";
  item.append(el("span", letter.reason || "not a dead letter", "tag reason"));
  if (letter.stage) item.append(el("span", letter.stage, "tag"));
  if (letter.route) item.append(el("span", `route ${letter.route}`, "tag"));
  const event = letter.event || {};
  item.append(el("span", [event.type, event.id, letter.subject, letter.time]
    .filter((x) => x).join("  ·  ")));
  item.append(el("div", letter.detail, "detail"));
  item.append(el("code", letter.payload));
  prepend(document.getElementById("deadletters"), item);
}

follow(url("/ui/stats"), (name, data, id) => {
  if (name === "open") setStatus("stats-status", "live", "ok");
  else if (name === "stats") showStats(JSON.parse(data));
  else if (name === "deadletter") showDeadLetter(JSON.parse(data), id);
}, "stats-status");

// ------------------------------------------------------------------ the tail

function tailQuery(filter) {
  const query = {};
  for (const key of ["stream", "subject", "subscription"]) {
    if (params.has(key)) query[key] = params.get(key);
  }
  if (!query.stream && !query.subscription && !query.subject) query.subject = ">";
  if (filter) query.filter = filter;
  return query;
}

function showEvent(name, data, id) {
  let event;
  try { event = JSON.parse(data); } catch (e) { return; }
  const item = el("li");
  if (name === "gap" || name === "overflow") {
    item.append(el("span", name, "tag reason"), el("span", data));
  } else {
    item.dataset.id = event.id || "";
    item.append(el("span", event.type, "tag"));
    item.append(el("span", [event.id, event.source, event.time, id && `seq ${id}`]
      .filter((x) => x).join("  ·  ")));
    const body = "data" in event ? JSON.stringify(event.data) : event.data_base64 || "";
    item.append(el("code", body.length > 400 ? `${body.slice(0, 400)}…` : body));
  }
  prepend(document.getElementById("tail"), item);
}

let tail = null;

function startTail(filter) {
  if (tail) tail.abort();
  document.getElementById("tail").replaceChildren();
  setStatus("tail-status", "connecting…", "");
  tail = follow(url("/events/stream", tailQuery(filter)), (name, data, id) => {
    if (name === "open") setStatus("tail-status", filter ? `filtered: ${filter}` : "all events", "ok");
    else showEvent(name, data, id);
  }, "tail-status");
}

document.getElementById("tail-form").addEventListener("submit", (e) => {
  e.preventDefault();
  startTail(document.getElementById("filter").value.trim());
});
const initial = params.get("filter") || "";
document.getElementById("filter").value = initial;
startTail(initial);
