// Live status: opens the WebSocket named by data-ws-path and fills [data-field] elements from
// each snapshot. Reconnects with backoff; the server always sends a full snapshot on connect.
// A [data-timestamp] field holds an ISO moment, shown as the {% timestamp %} tag shows one
// (portal/time.js); everything else is plain text.
(function () {
  "use strict";
  const root = document.querySelector("[data-ws-path]");
  if (!root) return;
  const state = document.getElementById("live-state");
  let delay = 1000;

  function show(el, value) {
    const empty = value === null || value === undefined || value === "";
    if (el.hasAttribute("data-timestamp") && !empty && window.portalTime) {
      el.replaceChildren(window.portalTime.element(String(value), root.dataset.timeZone));
      return;
    }
    el.textContent = empty ? "none yet" : String(value);
  }

  function apply(status) {
    for (const [key, value] of Object.entries(status)) {
      const el = root.querySelector(`[data-field="${key}"]`);
      if (el) show(el, value);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    socket.onopen = () => { delay = 1000; if (state) state.textContent = "connected"; };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "snapshot") apply(message.status);
    };
    socket.onclose = () => {
      if (state) state.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
