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
