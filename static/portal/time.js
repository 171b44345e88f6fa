// Keeps the relative part of every {% timestamp %} ("3 min ago", "in 2 h") current while a page
// stays open. The server already rendered it right for the moment the page was served, so the page
// is correct without this script. The rule is the one in portal/templatetags/portal.py.
(function () {
  "use strict";
  const REFRESH_MS = 30000;

  function relativePhrase(moment, now) {
    const seconds = (moment - now) / 1000;
    const distance = Math.abs(seconds);
    if (distance < 10) return "just now";
    let amount;
    let unit;
    if (distance < 60) [amount, unit] = [Math.floor(distance), "s"];
    else if (distance < 3600) [amount, unit] = [Math.floor(distance / 60), "min"];
    else if (distance < 86400 * 2) [amount, unit] = [Math.floor(distance / 3600), "h"];
    else [amount, unit] = [Math.floor(distance / 86400), "d"];
    return seconds > 0 ? `in ${amount} ${unit}` : `${amount} ${unit} ago`;
  }

  function refresh(root = document) {
    const now = Date.now();
    for (const relative of root.querySelectorAll("time.timestamp [data-relative]")) {
      const moment = Date.parse(relative.parentElement.getAttribute("datetime"));
      if (!Number.isNaN(moment)) relative.textContent = `(${relativePhrase(moment, now)})`;
    }
  }

  // "2025-10-12 10:00:05 UTC" in the portal's time zone, as the server writes it.
  function localText(iso, timeZone) {
    const parts = Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: timeZone || "UTC",
        hourCycle: "h23",
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
        timeZoneName: "short",
      })
        .formatToParts(new Date(iso))
        .map((part) => [part.type, part.value])
    );
    return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
  }

  // For scripts that receive a new moment (the dashboard's live status): the same markup as the
  // {% timestamp %} tag, built with textContent only.
  function element(iso, timeZone) {
    const time = document.createElement("time");
    time.className = "timestamp";
    time.setAttribute("datetime", iso);
    time.title = iso;
    const relative = document.createElement("span");
    relative.className = "relative";
    relative.setAttribute("data-relative", "");
    time.append(`${localText(iso, timeZone)} `, relative);
    refresh(time);
    return time;
  }

  window.portalTime = { relativePhrase, refresh, localText, element };
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
