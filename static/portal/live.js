// Live status: opens the WebSocket named by data-ws-path and fills [data-field] elements from
// each snapshot. Reconnects with backoff; the server always sends a full snapshot on connect.
(function () {
  "use strict";
  const root = document.querySelector("[data-ws-path]");
  if (!root) return;
  const state = document.getElementById("live-state");
  let delay = 1000;

  function apply(status) {
    for (const [key, value] of Object.entries(status)) {
      const el = root.querySelector(`[data-field="${key}"]`);
      if (el) el.textContent = value === null || value === "" ? "none yet" : String(value);
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
