// CI pages, live: the /ws/ci/ socket sends a hint on every change; the page then reloads its
// #live-region from the server (the same HTML a reload would give). While the socket is down the
// region is refreshed every 30 s. SLA countdowns ([data-deadline]) tick every second.
(function () {
  "use strict";
  const region = document.getElementById("live-region");
  const states = document.querySelectorAll("[data-live-state]");
  let socketOpen = false;
  let delay = 1000;
  let pending = null;

  function setState(text) { states.forEach((el) => { el.textContent = text; }); }

  function format(seconds) {
    if (seconds <= 0) return "overdue";
    const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    return (h ? `${h} h ` : "") + (h || m ? `${m} min ` : "") + `${s} s left`;
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-deadline]").forEach((el) => {
      const deadline = Date.parse(el.dataset.deadline);
      if (Number.isNaN(deadline)) return;
      const seconds = Math.round((deadline - now) / 1000);
      el.textContent = format(seconds);
      const badge = el.closest(".sla");
      if (badge) {
        badge.classList.toggle("urgent", seconds > 0 && seconds < 3600);
        badge.classList.toggle("overdue", seconds <= 0);
      }
    });
  }

  async function refresh() {
    if (!region) return;
    try {
      const response = await fetch(location.href, { headers: { "X-Requested-With": "live" }, credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("live-region");
      if (fresh) {
        region.replaceChildren(...fresh.childNodes);
        tick();
        if (window.portalTime && window.portalTime.refresh) window.portalTime.refresh();
      }
    } catch (error) { /* the next hint or poll tries again */ }
  }

  function scheduleRefresh() {
    if (pending) return;
    pending = setTimeout(() => { pending = null; refresh(); }, 250);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/ci/`);
    socket.onopen = () => { socketOpen = true; delay = 1000; setState("connected"); };
    socket.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "changed") scheduleRefresh();
    };
    socket.onclose = () => {
      socketOpen = false;
      setState("reconnecting… (refreshing every 30 s)");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }

  setInterval(tick, 1000);
  setInterval(() => { if (!socketOpen) refresh(); }, 30000);
  tick();
  connect();
})();
