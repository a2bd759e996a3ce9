// The configuration editor: a textarea with a line-number gutter kept in
// sync, Check / Diff / Apply through the JSON API, diagnostics in the list
// and in the gutter at their lines, and the history's view diff / restore.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const app = document.getElementById("editor-app");
  if (!app) return;
  const service = app.dataset.service;
  const base = app.dataset.base || "/api/services/" + encodeURIComponent(service);
  const text = document.getElementById("text");
  const gutter = document.getElementById("gutter");
  const list = document.getElementById("diagnostics");
  const status = document.getElementById("status");
  const diffout = document.getElementById("diffout");
  let marks = new Map(); // line -> "bad" | "warn"

  function renderGutter() {
    const lines = text.value.split("\n").length;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= lines; i++) {
      const span = document.createElement("span");
      span.textContent = String(i);
      if (marks.has(i)) span.className = marks.get(i);
      frag.appendChild(span);
    }
    gutter.replaceChildren(frag);
    gutter.scrollTop = text.scrollTop;
  }

  function showDiagnostics(diags) {
    marks = new Map();
    list.replaceChildren();
    for (const d of diags || []) {
      const li = document.createElement("li");
      li.className = d.severity === "warning" ? "warning" : "error";
      li.textContent = (d.line ? "line " + d.line + ": " : "") + d.message;
      if (d.line) {
        li.addEventListener("click", () => goToLine(d.line));
        if (marks.get(d.line) !== "bad") marks.set(d.line, d.severity === "warning" ? "warn" : "bad");
      }
      list.appendChild(li);
    }
    renderGutter();
  }

  function goToLine(n) {
    const lines = text.value.split("\n");
    let pos = 0;
    for (let i = 0; i < n - 1 && i < lines.length; i++) pos += lines[i].length + 1;
    text.focus();
    text.setSelectionRange(pos, pos + (lines[n - 1] || "").length);
  }

  function say(msg, bad) {
    status.textContent = msg;
    status.className = bad ? "error" : "message";
  }

  async function call(path, body) {
    say("…");
    return window.lanaiPost(base + path, body);
  }

  // Edited since the page loaded (i.e. differs from the running text shown).
  const loaded = text.value;
  function markEdited() {
    app.classList.toggle("edited", text.value !== loaded);
  }
  window.addEventListener("beforeunload", (e) => {
    if (text.value !== loaded && !app.dataset.applied) { e.preventDefault(); e.returnValue = ""; }
  });

  // Tab indents (4 spaces, as haproxy.cfg is usually written) instead of leaving the editor.
  text.addEventListener("keydown", (e) => {
    if (e.key !== "Tab" || e.shiftKey || e.ctrlKey || e.altKey || e.metaKey) return;
    e.preventDefault();
    const start = text.selectionStart;
    text.setRangeText("    ", start, text.selectionEnd, "end");
    renderGutter();
    markEdited();
  });

  text.addEventListener("input", () => { renderGutter(); markEdited(); });
  text.addEventListener("scroll", () => { gutter.scrollTop = text.scrollTop; });

  document.getElementById("check").addEventListener("click", async () => {
    const r = await call("/check", text.value);
    showDiagnostics(r.body.diagnostics);
    if (r.status === 200) say("Configuration is valid", false);
    else say(r.body.error || "Invalid configuration", true);
  });

  document.getElementById("diff").addEventListener("click", async () => {
    const r = await call("/diff", text.value);
    if (r.status !== 200) { say(r.body.error, true); return; }
    diffout.hidden = false;
    diffout.textContent = r.body.diff || "(no difference with the running configuration)";
    say("", false);
  });

  document.getElementById("apply").addEventListener("click", async () => {
    const r = await call("/apply", text.value);
    if (r.status === 200) {
      app.dataset.applied = "1";
      app.classList.remove("edited");
      const warnings = r.body.warnings || [];
      if (warnings.length) {
        // In force, but the service could not do everything yet (e.g. an
        // interface that does not exist): keep the page so they can be read.
        showDiagnostics(warnings.map((w) => ({ line: 0, message: w, severity: "warning" })));
        say("Applied: revision " + r.body.revision + " is running, with warnings (not saved yet)", false);
      } else {
        showDiagnostics([]);
        say("Applied: revision " + r.body.revision + " is running (not saved yet)", false);
        setTimeout(() => location.reload(), 800);
      }
    } else if (r.status === 422) {
      showDiagnostics(r.body.diagnostics);
      say("Invalid configuration: nothing changed", true);
    } else {
      say((r.body.error || "Apply failed") + (r.body.restored ? " (previous configuration restored)" : ""), true);
    }
  });

  for (const b of document.querySelectorAll("button.view-diff")) {
    b.addEventListener("click", async () => {
      const res = await fetch(base + "/revisions/" + b.dataset.id, { credentials: "same-origin" });
      const body = await res.json();
      diffout.hidden = false;
      diffout.textContent = res.ok ? (body.diff || "(identical to the previous revision)") : body.error;
      diffout.scrollIntoView();
    });
  }

  for (const b of document.querySelectorAll("button.restore")) {
    b.addEventListener("click", async () => {
      if (!confirm("Apply revision " + b.dataset.id + " again?")) return;
      const r = await call("/revisions/" + b.dataset.id + "/restore", "");
      if (r.status === 200) { app.dataset.applied = "1"; say("Restored as revision " + r.body.revision, false); setTimeout(() => location.reload(), 800); }
      else if (r.status === 422) { showDiagnostics(r.body.diagnostics); say("That revision no longer validates", true); }
      else say(r.body.error || "Restore failed", true);
    });
  }

  renderGutter();
});
