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
  const note = document.createElement("span");
  note.className = "cmc-kill-note";
  el.append(button, state, rearm, note);

  const show = (data) => {
    state.textContent = data.state;
    state.dataset.state = data.state;
    el.dataset.state = data.state;
    rearm.disabled = data.state === "ACTIVE";
    model.set("state", data.state);
    model.set("working_orders", data.working_orders);
    model.save_changes();
  };
  const fail = (err) => { note.textContent = "side channel: " + err.message; };

  button.addEventListener("click", async () => {
    button.disabled = true;
    const started = performance.now();
    try {
      const data = await call(model, "/kill", { reason: model.get("reason"), who: "workbench kill switch" });
      note.textContent = `cancelled ${data.cancelled} order(s) in ${Math.round(performance.now() - started)} ms`;
      show(data);
    } catch (err) { fail(err); } finally { button.disabled = false; }
  });
  rearm.addEventListener("click", async () => {
    if (!window.confirm("Re-arm trading? New orders will be accepted again.")) return;
    try { show(await call(model, "/rearm", { who: "workbench kill switch" })); note.textContent = "re-armed"; }
    catch (err) { fail(err); }
  });

  const poll = async () => {
    try { show(await call(model, "/state")); } catch (err) { fail(err); }
  };
  poll();
  const timer = setInterval(poll, POLL_MS);
  return () => clearInterval(timer);
}

export default { render };
