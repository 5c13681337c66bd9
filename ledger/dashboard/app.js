// The ledger dashboard: every figure comes from the public read API, called
// with the token the user pasted (kept in sessionStorage: this tab only).
"use strict";

const TOKEN_KEY = "ledger.dashboard.token";
const TAIL_SHOWN = 50;
const $ = (sel) => document.querySelector(sel);

const dashboard = {
  token: null,
  claims: null,
  charts: {},
  following: null,
  /** The answers the page drew from, by route (for reading back). */
  answers: {},
};
window.dashboard = dashboard;

function setStatus(text) {
  $("#status").textContent = text || "";
}

/** The claims of a JWT (not checked here: the API checks the token). */
function claimsOf(token) {
  const part = token.split(".")[1];
  if (!part) throw new Error("not a JWT");
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json);
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${dashboard.token}`, Accept: "application/json" },
  });
  if (response.status === 401) {
    signOut("The token was refused or has expired: sign in again.");
    throw new Error("401");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error((body && (body.detail || body.title)) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  dashboard.answers[path] = body;
  return body;
}

// ---------------------------------------------------------------- sign in

function signIn(token) {
  let claims;
  try {
    claims = claimsOf(token);
  } catch (e) {
    setStatus("That is not a token (expected a JWT: three parts separated by dots).");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  dashboard.token = token;
  dashboard.claims = claims;
  $("#sign-in").hidden = true;
  $("#who").hidden = false;
  $("#who-text").textContent = `${claims.sub} (${claims.role})`;
  setStatus("");
  if (claims.role === "admin" || claims.role === "analyst" || claims.role === "auditor") {
    showOperator();
  } else if (claims.role === "vendor") {
    showVendor();
  } else {
    setStatus("This dashboard is for operators, analysts, auditors and vendors.");
  }
  $("#main").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (dashboard.following) dashboard.following.abort();
  dashboard.following = null;
  dashboard.token = null;
  for (const chart of Object.values(dashboard.charts)) chart.destroy();
  dashboard.charts = {};
  $("#operator").hidden = true;
  $("#vendor").hidden = true;
  $("#who").hidden = true;
  $("#sign-in").hidden = false;
  $("#token").value = "";
  setStatus(message || "");
  $("#token").focus();
}

// ---------------------------------------------------------- live feeds

/**
 * Follows a `text/event-stream` route with the bearer token (EventSource
 * cannot send one), resuming with Last-Event-ID after a dropped connection.
 */
async function follow(path, onEvent) {
  const control = new AbortController();
  if (dashboard.following) dashboard.following.abort();
  dashboard.following = control;
  let last = null;
  while (!control.signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${dashboard.token}` };
      if (last !== null) headers["Last-Event-ID"] = String(last);
      const response = await fetch(path, { headers, signal: control.signal });
      if (response.status === 401) return signOut("The token has expired: sign in again.");
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const message = { id: null, event: null, data: "" };
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon <= 0) continue;
            const field = line.slice(0, colon);
            const text = line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") message.id = Number(text);
            else if (field === "event") message.event = text;
            else if (field === "data") message.data += text;
          }
          if (!message.event) continue;
          if (message.event === "token-expired") {
            return signOut("The token has expired: sign in again.");
          }
          if (message.id !== null) last = message.id;
          onEvent(message.event, JSON.parse(message.data));
        }
      }
    } catch (e) {
      if (control.signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function pushTail(list, text, attributes) {
  const item = document.createElement("li");
  item.textContent = text;
  for (const [key, value] of Object.entries(attributes)) item.dataset[key] = value;
  list.prepend(item);
  while (list.children.length > TAIL_SHOWN) list.lastElementChild.remove();
}

// ------------------------------------------------------------ operator

/** The distinct end of an id (UUIDv7s share their leading time bits). */
function shortId(id) {
  return `…${String(id).slice(-8)}`;
}

function money(text) {
  return Number(text);
}

function fillTable(selector, headings, rows) {
  const table = $(selector);
  table.replaceChildren();
  const head = table.createTHead().insertRow();
  for (const heading of headings) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = heading;
    head.append(th);
  }
  const body = table.createTBody();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell;
  }
}

function draw(name, config) {
  if (dashboard.charts[name]) dashboard.charts[name].destroy();
  config.options = Object.assign({ animation: false, responsive: true, maintainAspectRatio: true }, config.options || {});
  dashboard.charts[name] = new Chart($(`#chart-${name}`), config);
}

function query() {
  const params = new URLSearchParams();
  const from = $("#from").value;
  const to = $("#to").value;
  if (from) params.set("from", `${from}T00:00:00Z`);
  if (to) params.set("to", `${to}T00:00:00Z`);
  return params;
}

/** Sums revenue buckets by key (vendor or category) over the window. */
function byKey(buckets) {
  const sums = new Map();
  for (const b of buckets) sums.set(b.key, (sums.get(b.key) || 0) + money(b.gmv));
  return [...sums.entries()].sort((a, b) => b[1] - a[1]);
}

async function showOperator() {
  $("#operator").hidden = false;
  const role = dashboard.claims.role;
  const tasks = [];
  if (role !== "auditor") tasks.push(loadAnalytics(), loadProjections());
  if (role !== "analyst") tasks.push(verifyAudit());
  else $("#audit-result").textContent = "Audit verification needs the admin or auditor role.";
  $("#audit-run").hidden = role === "analyst";
  await Promise.allSettled(tasks);
  startTail();
}

async function loadAnalytics() {
  const granularity = $("#granularity").value;
  const params = query();
  const revenueParams = new URLSearchParams(params);
  revenueParams.set("granularity", granularity);
  const with_group = (group) => {
    const p = new URLSearchParams(revenueParams);
    p.set("group_by", group);
    return `/v1/analytics/revenue?${p}`;
  };
  try {
    const [summary, revenue, vendors, categories] = await Promise.all([
      api(`/v1/analytics/summary?${params}`),
      api(with_group("none")),
      api(with_group("vendor")),
      api(with_group("category")),
    ]);
    for (const el of document.querySelectorAll("[data-figure]")) {
      const key = el.dataset.figure;
      const value = summary[key];
      el.textContent = value === undefined ? "–" : String(value);
    }
    const labels = revenue.buckets.map((b) => b.start.slice(0, 10));
    draw("revenue", {
      type: "bar",
      data: {
        labels,
        datasets: [
          { label: `GMV (${revenue.currency})`, data: revenue.buckets.map((b) => money(b.gmv)), backgroundColor: "#1f5f8b" },
          { label: "Platform fees", data: revenue.buckets.map((b) => money(b.platform_fees)), backgroundColor: "#f0a500" },
        ],
      },
    });
    fillTable("#table-revenue", ["Period", "GMV", "Platform fees", "Orders"],
      revenue.buckets.map((b) => [b.start.slice(0, 10), b.gmv, b.platform_fees, String(b.orders)]));
    const vendorSums = byKey(vendors.buckets);
    draw("vendor", {
      type: "bar",
      data: { labels: vendorSums.map(([k]) => shortId(k)), datasets: [{ label: "GMV", data: vendorSums.map(([, v]) => v), backgroundColor: "#2a9d8f" }] },
      options: { indexAxis: "y" },
    });
    fillTable("#table-vendor", ["Vendor", "GMV"], vendorSums.map(([k, v]) => [k, v.toFixed(2)]));
    const categorySums = byKey(categories.buckets);
    draw("category", {
      type: "bar",
      data: { labels: categorySums.map(([k]) => k), datasets: [{ label: "GMV", data: categorySums.map(([, v]) => v), backgroundColor: "#8d5fd3" }] },
    });
    fillTable("#table-category", ["Category", "GMV"], categorySums.map(([k, v]) => [k, v.toFixed(2)]));
    // The summary's rate has four places: exact for fewer than 5,000 orders.
    const cancelled = Math.round(Number(summary.cancellation_rate) * summary.orders);
    const open = Math.max(0, summary.orders - summary.paid_orders - cancelled);
    draw("outcomes", {
      type: "doughnut",
      data: { labels: ["Paid", "Cancelled", "Open"], datasets: [{ data: [summary.paid_orders, cancelled, open], backgroundColor: ["#2a9d8f", "#e76f51", "#adb5bd"] }] },
    });
    fillTable("#table-outcomes", ["Outcome", "Orders"], [["Paid", String(summary.paid_orders)], ["Cancelled", String(cancelled)], ["Open", String(open)]]);
    draw("failures", {
      type: "bar",
      data: { labels: summary.payment_failures.map((f) => f.reason), datasets: [{ label: "Failures", data: summary.payment_failures.map((f) => f.count), backgroundColor: "#e76f51" }] },
    });
    fillTable("#table-failures", ["Reason", "Failures"], summary.payment_failures.map((f) => [f.reason, String(f.count)]));
    const used = Number(summary.utilization);
    draw("utilisation", {
      type: "doughnut",
      data: { labels: ["Booked", "Free"], datasets: [{ data: [used, Math.max(0, 1 - used)], backgroundColor: ["#1f5f8b", "#dee2e6"] }] },
    });
    document.body.dataset.analytics = "loaded";
  } catch (e) {
    setStatus(`Analytics: ${e.message}`);
  }
}

async function loadProjections() {
  try {
    const rows = await api("/v1/projections");
    const body = $("#projections tbody");
    body.replaceChildren();
    for (const p of rows) {
      const tr = body.insertRow();
      tr.dataset.projection = p.name;
      for (const cell of [p.name, p.state, String(p.lag_events), p.lag_seconds.toFixed(1)]) tr.insertCell().textContent = cell;
    }
  } catch (e) {
    $("#projections tbody").replaceChildren();
  }
}

async function verifyAudit() {
  const result = $("#audit-result");
  result.textContent = "Verifying…";
  try {
    const report = await api("/v1/audit/verify");
    const at = new Date().toISOString().slice(0, 19).replace("T", " ");
    result.className = report.ok ? "ok" : "bad";
    result.dataset.ok = String(report.ok);
    result.textContent = report.ok
      ? `Verified at ${at} UTC: ${report.checked} events, ${report.seals_checked} seals${report.signatures_checked ? " (signatures checked)" : ""}.`
      : `FAILED at ${at} UTC: ${report.first_failure ? report.first_failure.reason : "see the report"}`;
  } catch (e) {
    result.className = "bad";
    result.textContent = `Verification unavailable: ${e.message}`;
  }
}

async function startTail() {
  const role = dashboard.claims.role;
  let after = 0;
  try {
    const page = await api("/v1/events?limit=1");
    after = Math.max(0, page.horizon - 20);
  } catch (e) {
    return;
  }
  let refresh = null;
  follow(`/v1/events/stream?after=${after}`, (type, event) => {
    pushTail($("#tail"), `#${event.position} ${type} ${event.aggregate_type} ${event.aggregate_id}`, {
      position: event.position, eventType: type, aggregateId: event.aggregate_id,
    });
    // New facts move the figures: redraw shortly after a burst.
    if (role !== "auditor" && !refresh) {
      refresh = setTimeout(() => {
        refresh = null;
        loadAnalytics();
        loadProjections();
      }, 1500);
    }
  });
}

// --------------------------------------------------------------- vendor

async function vendorOrders() {
  const orders = [];
  let cursor = null;
  for (let pages = 0; pages < 10; pages++) {
    const params = new URLSearchParams({ limit: "100" });
    if (cursor) params.set("cursor", cursor);
    const page = await api(`/v1/orders?${params}`);
    orders.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return orders;
}

async function loadVendor() {
  const vendorId = dashboard.claims.vendor_id;
  const [earnings, orders, entries] = await Promise.all([
    api(`/v1/vendors/${vendorId}/earnings`),
    vendorOrders(),
    api(`/v1/vendors/${vendorId}/earnings/entries?limit=100`).catch(() => ({ items: [] })),
  ]);
  for (const el of document.querySelectorAll("[data-earning]")) {
    const value = earnings[el.dataset.earning];
    el.textContent = value === undefined ? "–" : String(value);
  }
  orders.sort((a, b) => (b.placed_at || "").localeCompare(a.placed_at || ""));
  const body = $("#orders tbody");
  body.replaceChildren();
  for (const order of orders) {
    const part = (order.vendors || [])[0] || {};
    const tr = body.insertRow();
    tr.dataset.orderId = order.order_id;
    for (const cell of [order.order_id, (order.placed_at || "").slice(0, 16).replace("T", " "), order.status, part.status || "", part.net || ""]) {
      tr.insertCell().textContent = cell;
    }
  }
  // Rental lines still to be picked up, or to come back (overdue past end).
  const now = Date.now();
  const upcoming = [];
  for (const order of orders) {
    if (order.status === "cancelled" || order.status === "refunded") continue;
    for (const line of order.lines || []) {
      if (line.kind !== "rental" || !line.start) continue;
      if (line.status === "pending" || line.status === "confirmed") upcoming.push({ when: line.start, what: "pickup", order, line });
      else if (line.status === "picked_up") upcoming.push({ when: line.end, what: "return", order, line });
    }
  }
  upcoming.sort((a, b) => a.when.localeCompare(b.when));
  const next = $("#upcoming tbody");
  next.replaceChildren();
  for (const item of upcoming) {
    const tr = next.insertRow();
    const overdue = Date.parse(item.when) < now;
    if (overdue) tr.className = "overdue";
    for (const cell of [item.when.slice(0, 16).replace("T", " ") + (overdue ? " (overdue)" : ""), item.what, shortId(item.order.order_id), shortId(item.line.listing_id), String(item.line.quantity)]) {
      tr.insertCell().textContent = cell;
    }
  }
  const payouts = $("#payouts tbody");
  payouts.replaceChildren();
  // A payout is posted twice (both sides touch the vendor): one row each.
  const seen = new Set();
  for (const entry of entries.items || []) {
    if (!/payout/i.test(entry.kind) || seen.has(entry.position)) continue;
    seen.add(entry.position);
    const tr = payouts.insertRow();
    for (const cell of [(entry.recorded_at || "").slice(0, 16).replace("T", " "), entry.debit !== "0.00" ? entry.debit : entry.credit, entry.kind]) tr.insertCell().textContent = cell;
  }
  document.body.dataset.vendor = "loaded";
}

async function showVendor() {
  $("#vendor").hidden = false;
  try {
    await loadVendor();
  } catch (e) {
    setStatus(`Your shop: ${e.message}`);
    return;
  }
  // From the start: the list shows the latest of the shop's order events,
  // then new ones as they happen.
  const after = 0;
  let refresh = null;
  follow(`/v1/orders/stream?after=${after}`, (type, event) => {
    pushTail($("#vendor-tail"), `#${event.position} ${type} order ${event.order_id}`, {
      position: event.position, eventType: type, orderId: event.order_id,
    });
    if (!refresh) {
      refresh = setTimeout(() => {
        refresh = null;
        loadVendor().catch((e) => setStatus(`Your shop: ${e.message}`));
      }, 1000);
    }
  });
}

// ----------------------------------------------------------------- wiring

document.addEventListener("DOMContentLoaded", () => {
  $("#sign-in-form").addEventListener("submit", (e) => {
    e.preventDefault();
    signIn($("#token").value.trim());
  });
  $("#token").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("#sign-in-form").requestSubmit();
    }
  });
  $("#sign-out").addEventListener("click", () => signOut("Signed out."));
  $("#range").addEventListener("submit", (e) => {
    e.preventDefault();
    loadAnalytics();
  });
  $("#audit-run").addEventListener("click", verifyAudit);
  const kept = sessionStorage.getItem(TOKEN_KEY);
  if (kept) signIn(kept);
  else $("#token").focus();
});
