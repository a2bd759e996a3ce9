// Shared console helpers: the session's CSRF token (from the page's meta tag)
// for fetch() calls, and the Setup tab's restore upload.
"use strict";

function lanaiCsrf() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

// POST with the CSRF header; resolves to {status, body} (JSON when possible).
async function lanaiPost(url, body, contentType) {
  const res = await fetch(url, {
    method: "POST",
    headers: { "X-CSRF-Token": lanaiCsrf(), "Content-Type": contentType || "text/plain; charset=utf-8" },
    body: body,
    credentials: "same-origin",
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = { error: text }; }
  return { status: res.status, body: json };
}

// Explicitly global: editor.js (a separate script) uses it.
window.lanaiPost = lanaiPost;

document.addEventListener("DOMContentLoaded", () => {
  const button = document.getElementById("restore");
  if (!button) return;
  button.addEventListener("click", async () => {
    const input = document.getElementById("restore-file");
    const out = document.getElementById("restore-result");
    if (!input.files.length) { out.textContent = "Choose a backup file first."; return; }
    const text = await input.files[0].text();
    const r = await lanaiPost("/api/restore", text, "application/json");
    out.textContent = JSON.stringify(r.body, null, 2);
  });
});

// LB Admin: refresh states, checks, weights and sessions every 3 s from the
// JSON API (the page itself stays usable without JS).
function statColour(status) {
  const s = status.toUpperCase();
  if (s.startsWith("UP") || s.startsWith("OPEN")) return "up";
  if (s.startsWith("DRAIN") || s.startsWith("NOLB") || s.includes("GOING")) return "drain";
  if (s.startsWith("MAINT")) return "maint";
  if (status === "no check") return "nocheck";
  return "down";
}

document.addEventListener("DOMContentLoaded", () => {
  const table = document.getElementById("stat");
  if (!table) return;
  const age = document.getElementById("stat-age");
  setInterval(async () => {
    try {
      const res = await fetch("/api/lb/stat", { credentials: "same-origin" });
      if (!res.ok) { age.textContent = "data plane not answering"; return; }
      const rows = await res.json();
      for (const r of rows) {
        for (const tr of table.querySelectorAll("tr[data-proxy]")) {
          if (tr.dataset.proxy !== r.proxy || tr.dataset.name !== r.name) continue;
          const state = tr.querySelector(".state");
          state.textContent = r.status;
          state.className = "state " + statColour(r.status);
          tr.querySelector(".check").textContent = r.check;
          tr.querySelector(".weight").textContent = r.weight;
          tr.querySelector(".sessions").textContent = r.sessions;
        }
      }
      age.textContent = "live, " + new Date().toLocaleTimeString();
    } catch (e) {
      age.textContent = "console not answering";
    }
  }, 3000);
});
