// Kill switch: talks to the engine's loopback side channel directly, so a press works even
// while the kernel is busy running a cell (widget messages would wait behind it).
const POLL_MS = 500;

async function call(model, path, body) {
  const url = model.get("url") + path;
  const init = body === undefined
    ? { method: "GET", headers: { "X-CMC-Token": model.get("token") } }
    : {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CMC-Token": model.get("token") },
        body: JSON.stringify(body),
      };
  const response = await fetch(url, init);
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
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
      note.textContent = `cancelled ${data.cancelled} order(s) in ${Math.round(performance.now() - started)} ms`;
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
