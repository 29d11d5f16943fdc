// Kill switch: reaches the engine's side channel without the kernel, so a press works even while
// the kernel is busy running a cell (widget messages would wait behind it). It goes through the
// Jupyter server's cmc-lab route (same origin as this page: works on Binder and any hub) and,
// when the server answers 404 (extension not enabled), straight to the kernel's loopback port.
const POLL_MS = 500;

// The notebook server's base URL and token: JupyterLab / Notebook 7 / Voila page config,
// else classic Notebook's <body data-base-url>; null outside a Jupyter server page (e.g. VS Code).
function jupyterServer() {
  const script = document.getElementById("jupyter-config-data");
  let config = {};
  if (script) {
    try { config = JSON.parse(script.textContent); } catch { config = {}; }
  }
  const base = config.baseUrl || (document.body && document.body.dataset.baseUrl);
  if (!base) return null;
  return { base: base.endsWith("/") ? base : base + "/", token: config.token || "" };
}

function cookie(name) {
  const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

let server = jupyterServer();  // set to null once the route answers 404: talk to loopback directly

function request(url, token, body, extra) {
  const headers = { "X-CMC-Token": token, ...extra };
  if (body === undefined) return fetch(url, { method: "GET", headers });
  headers["Content-Type"] = "application/json";
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}

// The side channel's secret: asked of the kernel by message on each page load, kept in memory
// only (never a model trait, so it is not saved with the widget state into the notebook).
const tokens = new WeakMap();
function tokenOf(model) {
  let pending = tokens.get(model);
  if (!pending) {
    pending = new Promise((resolve) => {
      const got = (msg) => {
        if (msg && typeof msg.token === "string") { model.off("msg:custom", got); resolve(msg.token); }
      };
      model.on("msg:custom", got);
      model.send({ ask: "token" });
    });
    tokens.set(model, pending);
  }
  return pending;
}

async function call(model, path, body) {
  const token = await tokenOf(model);
  let response = null;
  if (server) {
    const port = new URL(model.get("url")).port;
    const url = new URL(`${server.base}cmc-lab${path}/${port}`, window.location.origin);
    const extra = {};
    const xsrf = cookie("_xsrf");
    if (xsrf) extra["X-XSRFToken"] = xsrf;  // jupyter_server checks XSRF on a POST
    if (server.token) extra["Authorization"] = `token ${server.token}`;
    response = await request(url, token, body, extra);
    if (response.status === 404) {  // no such route: the server extension is not enabled
      server = null;
      response = null;
    }
  }
  const via = response ? "server" : "direct";
  if (!response) response = await request(model.get("url") + path, token, body, {});
  let data = {};
  try { data = await response.json(); } catch { data = {}; }
  if (!response.ok) throw new Error(data.error || data.message || `${response.status} ${response.statusText}`);
  return { ...data, via };
}

function render({ model, el }) {
  el.classList.add("cmc-kill");
  const button = document.createElement("button");
  button.className = "cmc-kill-button";
  button.textContent = "KILL";
  button.title = "Cancel every working order on every venue and block new orders";
  const rearm = document.createElement("button");
  rearm.className = "cmc-kill-rearm";
  rearm.textContent = "re-arm";
  const state = document.createElement("span");
  state.className = "cmc-kill-state";
  const orders = document.createElement("span");
  orders.className = "cmc-kill-orders";
  const note = document.createElement("span");
  note.className = "cmc-kill-note";
  el.append(button, state, orders, rearm, note);

  const show = (data) => {
    state.textContent = data.state;
    state.dataset.state = data.state;
    el.dataset.state = data.state;
    el.dataset.via = data.via;
    orders.textContent = `${data.working_orders} working order${data.working_orders === 1 ? "" : "s"}`;
    rearm.disabled = data.state === "ACTIVE";
    // Sync only changes: each save is a kernel message that queues behind a running cell.
    if (model.get("state") !== data.state || model.get("working_orders") !== data.working_orders) {
      model.set("state", data.state);
      model.set("working_orders", data.working_orders);
      model.save_changes();
    }
  };
  const fail = (err) => { note.textContent = "side channel: " + err.message; };

  button.addEventListener("click", async () => {
    button.disabled = true;
    const started = performance.now();
    try {
      const data = await call(model, "/kill", { reason: model.get("reason"), who: "workbench kill switch" });
      const ms = Math.round(performance.now() - started);
      note.textContent = `cancelled ${data.cancelled} order(s) in ${ms} ms (${data.via === "server" ? "via the Jupyter server" : "direct to the kernel"})`;
      show(data);
      settle(20);
    } catch (err) { fail(err); } finally { button.disabled = false; }
  });
  rearm.addEventListener("click", async () => {
    if (!window.confirm("Re-arm trading? New orders will be accepted again.")) return;
    try { show(await call(model, "/rearm", { who: "workbench kill switch" })); note.textContent = "re-armed"; }
    catch (err) { fail(err); }
  });

  const poll = async () => {
    try {
      const data = await call(model, "/state");
      show(data);
      if (note.textContent.startsWith("side channel:")) note.textContent = "";  // reachable again
      return data;
    } catch (err) { fail(err); return null; }
  };
  // After a kill the venues confirm the cancels within a few hundred ms: show the count reach 0 then.
  const settle = async (tries) => {
    const data = await poll();
    if (data && data.working_orders > 0 && tries > 1) setTimeout(() => settle(tries - 1), 100);
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  return () => clearInterval(timer);
}

export default { render };
