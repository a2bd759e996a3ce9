// The console as an operator uses it, in headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core): log in, break the LB Layer7
// configuration and see the error at its line, fix it and Apply, traffic
// reaches the new backend, Save, restart `lanai run`: the configuration is
// still there; an applied-but-unsaved change is gone after a restart; LB Admin
// disables a server and traffic stops reaching it. Screenshots of every tab go
// to tests/browser/out/ for a reviewer.
//
// Run: `npm ci --prefix tests/browser && node --test tests/browser/` after
// `cargo build` (LANAI_BIN overrides target/debug/lanai).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, readFileSync, existsSync } from "node:fs";
import { createServer } from "node:http";
import { createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const LANAI = process.env.LANAI_BIN || join(here, "..", "..", "target", "debug", "lanai");
const SHOTS = join(here, "out");
const PASSWORD = "browser-test-pass";

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** An HTTP backend on 127.0.0.1 answering its name; counts hits. */
async function backend(name) {
  const port = await freePort();
  const state = { name, port, hits: 0 };
  state.server = createServer((req, res) => {
    state.hits++;
    res.writeHead(200, { "content-type": "text/plain" });
    res.end(name);
  });
  await new Promise((r) => state.server.listen(port, "127.0.0.1", r));
  return state;
}

/** `lanai run` on a data dir; resolves once the console answers. */
async function startLanai(dataDir, port) {
  const child = spawn(LANAI, ["run", "--data-dir", dataDir, "--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, LANAI_ADMIN_PASSWORD: PASSWORD, LANAI_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const deadline = Date.now() + 20000;
  while (!out.includes("Lanai console:")) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`lanai run did not start:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, log: () => out };
}

async function stopLanai(lanai) {
  if (lanai.child.exitCode !== null) return;
  const exited = new Promise((r) => lanai.child.once("exit", r));
  lanai.child.kill("SIGTERM");
  const timeout = new Promise((r) => setTimeout(r, 15000));
  await Promise.race([exited, timeout]);
  if (lanai.child.exitCode === null) lanai.child.kill("SIGKILL");
}

/** Kills children a failed test may have left (pid files in DATA/run). */
function killLeftovers(dataDir) {
  const run = join(dataDir, "run");
  if (!existsSync(run)) return;
  for (const f of ["haproxy.pid", "vrrp.pid"]) {
    try {
      const pid = parseInt(readFileSync(join(run, f), "utf8").split(/\s+/)[0], 10);
      if (pid > 1) process.kill(pid, "SIGKILL");
    } catch {
      /* gone already */
    }
  }
}

async function fetchText(port) {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/`);
    return await r.text();
  } catch {
    return null;
  }
}

async function eventually(fn, what, ms = 8000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} (last: ${JSON.stringify(last)})`);
}

function config(frontPort, servers, extra = "") {
  return [
    "global",
    "    log stdout format raw local0 info",
    "defaults",
    "    mode http",
    "    timeout connect 2s",
    "    timeout client 10s",
    "    timeout server 10s",
    "frontend www",
    `    bind 127.0.0.1:${frontPort}`,
    extra,
    "    default_backend app",
    "backend app",
    "    balance roundrobin",
    ...servers.map((s) => `    server ${s.name} 127.0.0.1:${s.port}`),
    "",
  ]
    .filter((l) => l !== "")
    .join("\n") + "\n";
}

async function launch() {
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

async function login(page, base) {
  await page.goto(base + "/");
  assert.match(page.url(), /\/login/, "the console must ask for a login first");
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.doesNotMatch(page.url(), /\/login/, "login failed");
}

async function applyFromEditor(page, base, text) {
  await page.goto(base + "/layer7");
  await page.fill("#text", text);
  await page.click("#apply");
  // "…" is shown while the request is out: wait for the answer itself.
  await page.waitForFunction(() => {
    const status = document.getElementById("status").textContent;
    return status.length > 0 && status !== "…";
  });
  return page.textContent("#status");
}

test("the console: login, editor errors at their line, apply, save, restart, LB Admin", async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), "lanai-browser-"));
  const consolePort = await freePort();
  const frontPort = await freePort();
  const base = `https://127.0.0.1:${consolePort}`;
  const one = await backend("one");
  const two = await backend("two");
  let lanai = await startLanai(dataDir, consolePort);
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await stopLanai(lanai);
    killLeftovers(dataDir);
    one.server.close();
    two.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();

  await page.goto(base + "/");
  await page.screenshot({ path: join(SHOTS, "login.png") });
  await login(page, base);
  const tabs = await page.$$eval("nav a", (as) => as.map((a) => a.textContent.trim()));
  for (const tab of ["LB Layer7", "LB Admin", "Services", "Setup"]) assert.ok(tabs.includes(tab), `tab ${tab}: ${tabs}`);

  // A broken configuration: the error is shown at its line, nothing applied.
  const broken = config(frontPort, [one], "    frobnicate yes");
  const brokenLine = broken.split("\n").indexOf("    frobnicate yes") + 1;
  await page.goto(base + "/layer7");
  await page.fill("#text", broken);
  await page.click("#check");
  await page.waitForSelector("#diagnostics li");
  const diags = await page.$$eval("#diagnostics li", (lis) => lis.map((l) => l.textContent));
  assert.ok(diags.some((d) => d.startsWith(`line ${brokenLine}:`) && d.includes("frobnicate")), JSON.stringify(diags));
  const marked = await page.$$eval("#gutter span.bad", (ss) => ss.map((s) => s.textContent));
  assert.deepEqual(marked, [String(brokenLine)], "the gutter marks the broken line");
  await page.screenshot({ path: join(SHOTS, "layer7-error.png") });
  const refused = await applyFromEditor(page, base, broken);
  assert.match(refused, /Invalid configuration/);
  assert.equal(await fetchText(frontPort), null, "nothing may be listening after a refused apply");

  // Fixed and applied: traffic reaches the backend through the data plane.
  const status = await applyFromEditor(page, base, config(frontPort, [one]));
  assert.match(status, /Applied: revision \d+/);
  assert.equal(await eventually(() => fetchText(frontPort), "proxied answer"), "one");
  await page.goto(base + "/layer7");
  assert.ok(await page.$("#unsaved"), "the unsaved-changes banner shows once running differs from saved");
  await page.screenshot({ path: join(SHOTS, "layer7.png") });

  // Save; a second change stays unsaved.
  await page.goto(base + "/setup");
  await Promise.all([page.waitForNavigation(), page.click("form[action='/setup/save'] button")]);
  assert.equal(await page.$("#unsaved"), null, "saved: no banner");
  await page.screenshot({ path: join(SHOTS, "setup.png") });
  await applyFromEditor(page, base, config(frontPort, [two]));
  assert.equal(await eventually(async () => ((await fetchText(frontPort)) === "two" ? "two" : null), "new backend"), "two");

  // Restart `lanai run`: the saved configuration comes back, the unsaved one is gone.
  await stopLanai(lanai);
  lanai = await startLanai(dataDir, consolePort);
  assert.equal(await eventually(async () => ((await fetchText(frontPort)) === "one" ? "one" : null), "saved config after restart"), "one");
  // Sessions are server-side, in the store: they survive the restart.
  await page.goto(base + "/layer7");
  assert.doesNotMatch(page.url(), /\/login/, "the session must survive a restart of lanai run");
  assert.equal(await page.$("#unsaved"), null);

  // LB Admin: two servers; disabling one stops its traffic.
  await applyFromEditor(page, base, config(frontPort, [one, two]));
  await eventually(async () => ((await fetchText(frontPort)) === "two" ? true : null), "both servers in rotation");
  await page.goto(base + "/admin");
  await page.waitForSelector("tr[data-name='two']");
  await page.screenshot({ path: join(SHOTS, "admin.png") });
  await Promise.all([
    page.waitForNavigation(),
    page.click("tr[data-proxy='app'][data-name='two'] form:has(input[value='disable']) button"),
  ]);
  await page.waitForSelector("tr[data-name='two'] .state");
  const state = await page.textContent("tr[data-name='two'] .state");
  assert.match(state, /MAINT/, `server state after disable: ${state}`);
  const hitsBefore = two.hits;
  for (let i = 0; i < 6; i++) assert.equal(await fetchText(frontPort), "one");
  assert.equal(two.hits, hitsBefore, "a disabled server receives no traffic");
  await page.screenshot({ path: join(SHOTS, "admin-disabled.png") });

  await page.goto(base + "/services");
  const rows = await page.$$eval("tr", (trs) => trs.map((r) => r.textContent.replace(/\s+/g, " ")));
  assert.ok(rows.some((r) => r.includes("haproxy") && r.includes("running")), JSON.stringify(rows));
  await page.screenshot({ path: join(SHOTS, "services.png") });

  // Services setup editor: `no autostart` in vrrp's block of config.rc.
  await page.click("tr[data-service='vrrp'] a.setup");
  await page.waitForSelector("#editor-app");
  assert.equal(await page.inputValue("#text"), "service vrrp\n");
  await page.fill("#text", "service vrrp\n  group eth0\n");
  await page.click("#check");
  await page.waitForSelector("#diagnostics li");
  const setupDiags = await page.$$eval("#diagnostics li", (lis) => lis.map((l) => l.textContent));
  assert.ok(setupDiags.some((d) => d.startsWith("line 2:") && d.includes("'group'")), JSON.stringify(setupDiags));
  await page.fill("#text", "service vrrp\n  no autostart\n");
  await page.click("#apply");
  await page.waitForFunction(() => /Applied/.test(document.getElementById("status").textContent));
  await page.screenshot({ path: join(SHOTS, "services-setup.png") });
  await page.goto(base + "/services");
  assert.equal((await page.textContent("tr[data-service='vrrp'] .autostart")).trim(), "no");
  assert.equal(await page.$("a.edit-configuration"), null, "Edit Configuration only in advanced mode");
  await page.click("text=[advanced mode]");
  await page.waitForSelector("a.edit-configuration");
  await page.screenshot({ path: join(SHOTS, "services-advanced.png") });
  await page.click("tr[data-service='network'] a.edit-configuration");
  await page.waitForSelector("#editor-app[data-service='network']");
  assert.match(await page.inputValue("#text"), /service vrrp\n  no autostart/);
});

test("pages other than the login page require a login", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), "lanai-browser-"));
  const consolePort = await freePort();
  const lanai = await startLanai(dataDir, consolePort);
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await stopLanai(lanai);
    killLeftovers(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage();
  for (const path of ["/layer7", "/admin", "/services", "/setup"]) {
    await page.goto(`https://127.0.0.1:${consolePort}${path}`);
    assert.match(page.url(), /\/login/, `${path} must redirect to the login page`);
  }
  await page.goto(`https://127.0.0.1:${consolePort}/login`);
  await page.fill("input[name=username]", "admin");
  await page.fill("input[name=password]", "wrong");
  // Waiting for the form's own navigation: the login page is already idle.
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.match(page.url(), /\/login/);
  assert.match(await page.textContent("body"), /invalid|wrong|incorrect/i);
});
