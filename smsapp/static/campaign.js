/* The campaign page, live: every few seconds GET /api/campaigns/{id} and fill in the status,
   the message counts by status, what holds waiting messages until when, and which actions
   the new status allows. A progressive enhancement: without JavaScript the page shows the
   counts as of its loading. No framework, no build step. */
(() => {
  "use strict";
  const root = document.querySelector("[data-live-campaign]");
  if (!root || !window.fetch) return;
  const url = root.getAttribute("data-live-campaign");
  const seconds = Number(root.getAttribute("data-poll-seconds")) || 5;
  const zone = root.getAttribute("data-tz") || "UTC";
  const badges = JSON.parse(root.getAttribute("data-status-badges") || "{}");
  const labels = {};
  const labelSource = root.querySelector('template[data-live="gate-labels"]');
  if (labelSource) {
    for (const el of labelSource.content.querySelectorAll("[data-gate]")) {
      labels[el.getAttribute("data-gate")] = el.textContent;
    }
  }
  const loaded = { status: root.getAttribute("data-status"), queued: Number(root.getAttribute("data-queued")) };
  const number = (n) => Number(n || 0).toLocaleString("en-US");

  // The tenant's wall clock, as the server writes it: 2026-03-02 09:30 AEDT.
  const pieces = (date, options) => {
    const parts = {};
    for (const p of new Intl.DateTimeFormat("en-AU", { timeZone: zone, hourCycle: "h23", ...options }).formatToParts(date)) {
      parts[p.type] = p.value;
    }
    return parts;
  };
  const localTime = (iso) => {
    if (!iso) return "";
    const p = pieces(new Date(iso), {
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} ${p.timeZoneName}`;
  };
  const clock = () => {
    const p = pieces(new Date(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    return `${p.hour}:${p.minute}:${p.second}`;
  };

  const note = root.querySelector('[data-live="updated"]');
  const setNote = (text) => { if (note) note.textContent = text; };

  const cell = (text, className) => {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  };

  const fill = (c) => {
    const status = root.querySelector('[data-live="status"]');
    if (status) {
      status.textContent = c.status;
      status.className = `badge ${badges[c.status] || ""}`.trim();
    }
    for (const el of root.querySelectorAll("[data-count]")) {
      const name = el.getAttribute("data-count");
      if (name === "total") continue;
      const n = c.jobs[name] || 0;
      el.textContent = number(n);
      el.closest("tr")?.classList.toggle("zero", n === 0);
    }
    const totalCell = root.querySelector('[data-count="total"]');
    if (totalCell) totalCell.textContent = number(Object.values(c.jobs).reduce((a, b) => a + b, 0));

    const held = root.querySelector('[data-live="held"]');
    if (held) {
      const gates = Object.keys(c.held).sort();
      if (gates.length === 0) {
        const tr = document.createElement("tr");
        tr.className = "empty";
        const td = cell("Nothing holds a message back.", "muted");
        td.colSpan = 3;
        tr.append(td);
        held.replaceChildren(tr);
      } else {
        held.replaceChildren(...gates.map((gate) => {
          const tr = document.createElement("tr");
          tr.setAttribute("data-gate", gate);
          tr.append(cell(labels[gate] || gate), cell(number(c.held[gate].count), "num"),
            cell(localTime(c.held[gate].until), "nowrap"));
          return tr;
        }));
      }
    }
    for (const el of root.querySelectorAll("[data-when]")) {
      el.hidden = !el.getAttribute("data-when").split(" ").includes(c.status);
    }
    const stale = root.querySelector('[data-live="stale"]');
    if (stale && (c.status !== loaded.status || (c.jobs.queued || 0) !== loaded.queued)) stale.hidden = false;
    setNote(`live · updated ${clock()}`);
    root.setAttribute("data-live-state", "live");
  };

  const poll = async () => {
    if (!document.hidden) {
      try {
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (response.ok) fill(await response.json());
        else setNote(`could not refresh (${response.status}); trying again`);
      } catch {
        setNote("could not refresh: no connection; trying again");
      }
    }
    setTimeout(poll, seconds * 1000);
  };
  setNote(`live · refreshes every ${seconds} s`);
  setTimeout(poll, seconds * 1000);
})();
