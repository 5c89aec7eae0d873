// Webhooks and calendars (contract 5) in the console. Uses app.js's `api`, `el`, `$` and
// `state.token`. Server data goes on the page with textContent only (via `el`). The panels
// load when opened (and after each change): the console does not poll.
"use strict";

const hooks = { secretShownFor: null };

function fmtTime(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

function showError(id, err) {
  const fields = (err.fields || []).map((f) => `${f.field}: ${f.message}`);
  $(id).textContent = fields.length ? fields.join("\n") : err.message;
}

// -- webhooks ---------------------------------------------------------------------------------
async function loadWebhooks() {
  const list = $("webhook-list");
  try {
    const { webhooks } = await api("GET", "/v1/webhooks");
    list.replaceChildren();
    if (!webhooks.length) list.append(el("li", "No webhooks yet.", "muted"));
    for (const hook of webhooks) list.append(webhookItem(hook));
  } catch (err) {
    showError("webhook-error", err);
  }
}

function webhookItem(hook) {
  const item = el("li");
  item.dataset.testid = "webhook";
  item.dataset.webhookId = hook.webhook_id;
  item.append(el("div", hook.url, "title"));
  item.append(el("div", `${hook.events.join(", ")} · added ${fmtTime(hook.created_at)}`, "muted"));
  const show = el("button", "Deliveries");
  show.type = "button";
  show.addEventListener("click", () => loadDeliveries(hook.webhook_id));
  const remove = el("button", "Delete");
  remove.type = "button";
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    try {
      await api("DELETE", `/v1/webhooks/${encodeURIComponent(hook.webhook_id)}`);
      $("deliveries-box").hidden = true;
    } catch (err) {
      showError("webhook-error", err);
    }
    await loadWebhooks();
  });
  item.append(show, " ", remove);
  return item;
}

async function loadDeliveries(webhookId) {
  try {
    const log = await api("GET", `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries`);
    $("deliveries-summary").textContent =
      `${log.delivered} delivered · ${log.pending} pending · ${log.failed} failed`;
    const rows = $("deliveries");
    rows.replaceChildren();
    for (const d of log.deliveries) {
      const row = el("tr");
      row.dataset.testid = "delivery";
      const result = d.status_code !== null ? `HTTP ${d.status_code}` : d.error || "error";
      row.append(el("td", fmtTime(d.ts)), el("td", d.event_id), el("td", d.type),
        el("td", d.attempt), el("td", result));
      rows.append(row);
    }
    $("deliveries-box").hidden = false;
  } catch (err) {
    showError("webhook-error", err);
  }
}

async function addWebhook(event) {
  event.preventDefault();
  $("webhook-error").textContent = "";
  const events = [...document.querySelectorAll("#webhook-events input:checked")].map((i) => i.value);
  const body = { url: $("webhook_url").value.trim() };
  if (events.length) body.events = events;
  try {
    const created = await api("POST", "/v1/webhooks", body);
    // The secret exists in this response only: show it once, never store it.
    $("webhook-secret").textContent = created.secret;
    $("webhook-secret-box").hidden = false;
    $("webhook-form").reset();
  } catch (err) {
    showError("webhook-error", err);
  }
  await loadWebhooks();
}

// -- calendars --------------------------------------------------------------------------------
async function loadCalendars() {
  const list = $("calendar-list");
  try {
    const { calendars } = await api("GET", "/v1/calendars");
    list.replaceChildren();
    if (!calendars.length) list.append(el("li", "No calendars yet.", "muted"));
    for (const calendar of calendars) list.append(calendarItem(calendar));
  } catch (err) {
    showError("calendar-error", err);
  }
}

function calendarItem(calendar) {
  const item = el("li");
  item.dataset.testid = "calendar";
  item.dataset.calendarId = calendar.calendar_id;
  item.append(el("div", calendar.name || calendar.ics_url, "title"));
  item.append(el("div", calendar.ics_url, "muted"));
  const sync = el("div", `last sync: ${fmtTime(calendar.last_success)}`);
  sync.dataset.testid = "calendar-sync";
  item.append(sync);
  if (calendar.last_error) {
    const error = el("div", `last error (${fmtTime(calendar.last_attempt)}): ${calendar.last_error}`, "error");
    error.dataset.testid = "calendar-last-error";
    item.append(error);
  }
  const vps = el("ul");
  vps.dataset.testid = "calendar-vps";
  for (const vp of calendar.vps) {
    const line = el("li", `${fmtTime(vp.start)} · ${vp.vp_id} · ${vp.status || "gone"}`);
    line.dataset.vpId = vp.vp_id;
    vps.append(line);
  }
  if (!calendar.vps.length) vps.append(el("li", "No VPs scheduled in the next 24 h.", "muted"));
  item.append(vps);
  const remove = el("button", "Remove");
  remove.type = "button";
  remove.addEventListener("click", async () => {
    remove.disabled = true;
    try {
      await api("DELETE", `/v1/calendars/${encodeURIComponent(calendar.calendar_id)}`);
    } catch (err) {
      showError("calendar-error", err);
    }
    await loadCalendars();
  });
  item.append(remove);
  return item;
}

async function addCalendar(event) {
  event.preventDefault();
  $("calendar-error").textContent = "";
  const body = { ics_url: $("ics_url").value.trim() };
  const name = $("calendar_name").value.trim();
  if (name) body.name = name;
  try {
    await api("POST", "/v1/calendars", body);
    $("calendar-form").reset();
  } catch (err) {
    showError("calendar-error", err);
  }
  await loadCalendars();
}

function initHooks() {
  $("webhook-form").addEventListener("submit", addWebhook);
  $("calendar-form").addEventListener("submit", addCalendar);
  $("webhook-secret-done").addEventListener("click", () => {
    $("webhook-secret").textContent = "";
    $("webhook-secret-box").hidden = true;
  });
  $("webhooks-panel").addEventListener("toggle", () => {
    if ($("webhooks-panel").open) loadWebhooks();
  });
  $("calendars-panel").addEventListener("toggle", () => {
    if ($("calendars-panel").open) loadCalendars();
  });
}

document.addEventListener("DOMContentLoaded", initHooks);
