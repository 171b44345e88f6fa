// A session's export page, live. The progress socket (/api/jira/export/progress/{id}) sends the
// session's state on connect and on every change (export_progress, export_complete,
// export_failed); while it is down the page polls GET /api/jira/export-status/{id} instead, at
// most once per 2 s (the endpoint's limit) and never before a 429's Retry-After has passed, and
// reconnects with a growing delay. Start and retry POST to the seed's endpoints with the CSRF
// token of the page's form. Results (Jira links, manual fixes, issues to clean up) come from
// GET /api/jira/export-results/{id} once an export ends. Every text is set with textContent.
(function () {
  "use strict";

  const configElement = document.getElementById("export-config");
  if (!configElement) return;
  const config = JSON.parse(configElement.textContent);
  const $ = (id) => document.getElementById(id);

  const POLL_MS = 2000; // the status endpoint answers 1 request per 2 s per session
  const IDLE_POLL_MS = 10000; // nothing running: someone else may still start it
  const CATEGORY_LABELS = {
    user_fixable: "User fixable",
    admin_required: "Admin required",
    temporary: "Temporary",
  };
  const FIX_LABELS = {
    assignee_invalid: "Assignee invalid",
    sprint_not_found: "Sprint not found",
    priority_unavailable: "Priority not available",
    attachment_failed: "Attachment not uploaded",
    link_failed: "Dependency link not created",
  };
  const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

  let state = null; // the last message, in the socket's shape
  let socket = null;
  let socketOpen = false;
  let reconnectDelay = 1000;
  let pollTimer = null;
  let pollAt = 0;
  let notBefore = 0; // no status request before this time (ms): the limit and Retry-After
  let resultsShownFor = null;
  let busy = false;

  // --- small helpers ----------------------------------------------------------------------------

  function text(value) {
    return String(value === null || value === undefined ? "" : value).replace(
      BIDI_CONTROLS,
      (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}>`
    );
  }

  function setText(id, value) {
    const node = $(id);
    if (node) node.textContent = text(value);
  }

  function show(id, visible) {
    const node = $(id);
    if (node) node.hidden = !visible;
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (content instanceof Node) td.append(content);
    else td.textContent = text(content);
    return td;
  }

  function jiraLink(key, url) {
    if (!url || !/^https?:\/\//.test(url)) return document.createTextNode(text(key || "—"));
    const link = document.createElement("a");
    link.href = url;
    link.rel = "noopener noreferrer";
    link.textContent = text(key);
    return link;
  }

  function setLiveState(value) {
    document.querySelectorAll("[data-live-state]").forEach((el) => {
      el.textContent = value;
    });
  }

  function plural(count, word) {
    return `${count} ${word}${count === 1 ? "" : "s"}`;
  }

  function csrfToken() {
    const input = document.querySelector("#export-actions input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // --- the status endpoint's shapes, as socket messages --------------------------------------------

  function fromStatus(body) {
    if (body.status === "completed") {
      return {
        type: "export_complete",
        status: "completed",
        tickets_created: body.jira_tickets_created,
        dependencies_created: body.dependencies_created,
        manual_fixes_needed: body.manual_fixes_needed,
        total_processing_time_minutes: body.total_processing_time_minutes,
      };
    }
    if (body.status === "failed") {
      return {
        type: "export_failed",
        status: "failed",
        failed_at_ticket: body.failed_at_ticket_order,
        error_category: body.error_category,
        retry_available: body.retry_available,
        error_message: body.user_message,
        recovery_actions: body.recovery_actions,
        retry_attempts_used: body.retry_attempts_used,
      };
    }
    const completed = body.tickets_completed || 0;
    const total = body.total_tickets || 0;
    let stage = body.status === "exporting" ? "Exporting" : "";
    if (body.current_ticket_title) {
      stage = `Creating ticket ${Math.min(completed + 1, total)} of ${total}: ${body.current_ticket_title}`;
    }
    return {
      type: "export_progress",
      status: body.status,
      progress_percentage: body.progress_percentage,
      current_stage: stage,
      tickets_completed: completed,
      tickets_failed: null,
      total_tickets: total,
      estimated_time_remaining_minutes: body.estimated_time_remaining_minutes,
    };
  }

  // --- drawing ----------------------------------------------------------------------------------

  function render(message) {
    state = message;
    const status = message.status;
    const badge = $("export-status");
    if (badge) {
      badge.textContent = status;
      badge.className = `badge ${status}`;
    }
    const running = status === "exporting";
    show("start-export", !busy && status === "draft");
    show("retry-export", !busy && message.type === "export_failed" && message.retry_available);
    if (message.type === "export_progress") renderProgress(message);
    if (message.type === "export_complete") renderComplete(message);
    if (message.type === "export_failed") renderFailure(message);
    show("failure-panel", message.type === "export_failed");
    show("complete-panel", message.type === "export_complete");
    if ((message.type === "export_complete" || message.type === "export_failed") && !running) {
      loadResults(message);
    }
    schedulePoll();
  }

  function renderProgress(message) {
    const percentage = Number(message.progress_percentage || 0);
    const bar = $("export-progress");
    bar.value = percentage;
    bar.textContent = `${percentage} %`;
    setText("progress-percentage", `${percentage.toFixed(1)} %`);
    if (message.status === "draft") {
      setText("progress-stage", "Not exported yet.");
      setText("progress-counts", plural(message.total_tickets || 0, "ticket") + " to export");
      setText("progress-eta", "");
      return;
    }
    setText("progress-stage", message.current_stage || "");
    let counts = `${message.tickets_completed} of ${plural(message.total_tickets, "ticket")} created`;
    if (message.tickets_failed) counts += `, ${message.tickets_failed} failed`;
    setText("progress-counts", counts);
    const minutes = message.estimated_time_remaining_minutes;
    let eta = "";
    if (minutes === 0) eta = "Almost done.";
    else if (minutes === 1) eta = "About 1 minute left.";
    else if (minutes) eta = `About ${minutes} minutes left.`;
    setText("progress-eta", eta);
  }

  function renderComplete(message) {
    const bar = $("export-progress");
    bar.value = 100;
    bar.textContent = "100 %";
    setText("progress-percentage", "100.0 %");
    setText("progress-stage", "Completed.");
    setText("progress-counts", `${plural(message.tickets_created, "ticket")} created`);
    setText("progress-eta", "");
    setText(
      "complete-summary",
      `${plural(message.tickets_created, "ticket")} created in Jira, ` +
        `${plural(message.dependencies_created, "dependency link")}, ` +
        `${message.manual_fixes_needed} manual fix${message.manual_fixes_needed === 1 ? "" : "es"} needed, ` +
        `in ${message.total_processing_time_minutes} min.`
    );
  }

  function renderFailure(message) {
    setText("progress-stage", "Stopped.");
    setText("progress-eta", "");
    setText("failure-category", CATEGORY_LABELS[message.error_category] || message.error_category);
    $("failure-category").dataset.category = message.error_category || "";
    setText(
      "failure-ticket",
      message.failed_at_ticket ? `Stopped at ticket #${message.failed_at_ticket}.` : ""
    );
    setText("failure-message", message.error_message);
    const list = $("failure-actions");
    list.replaceChildren();
    for (const action of message.recovery_actions || []) {
      const item = document.createElement("li");
      item.textContent = text(action);
      list.append(item);
    }
    setText(
      "failure-retry",
      message.retry_available
        ? "A retry resumes at the ticket it stopped on; issues already created are kept."
        : `No retry left (at most ${config.max_retries}): contact an administrator.`
    );
  }

  function renderResults(results) {
    const body = $("results-table").querySelector("tbody");
    body.replaceChildren();
    for (const ticket of results.jira_tickets || []) {
      const row = document.createElement("tr");
      row.dataset.ticket = ticket.ticket_id;
      const order = config.orders[ticket.ticket_id];
      row.append(cell(order === undefined ? "" : order, "number"));
      row.append(cell(ticket.title));
      row.append(cell(jiraLink(ticket.jira_key, ticket.jira_url)));
      body.append(row);
    }
    setText(
      "results-summary",
      `${plural(results.total_tickets_created, "ticket")} in Jira, ` +
        `${plural(results.dependencies_created, "dependency link")}.`
    );
    const fixes = $("fixes-table").querySelector("tbody");
    fixes.replaceChildren();
    for (const fix of results.manual_fixes || []) {
      const row = document.createElement("tr");
      row.append(cell(jiraLink(fix.jira_key, fix.jira_url)));
      row.append(cell(fix.title));
      row.append(cell(FIX_LABELS[fix.issue_type] || fix.issue_type));
      row.append(cell(fix.recommended_action));
      fixes.append(row);
    }
    show("fixes-block", (results.manual_fixes || []).length > 0);
    const orphans = $("orphans-list");
    orphans.replaceChildren();
    for (const orphan of results.orphaned_issues || []) {
      const item = document.createElement("li");
      item.append(document.createTextNode(`${text(orphan.jira_key)}: ${text(orphan.reason)}`));
      orphans.append(item);
    }
    show("orphans-block", (results.orphaned_issues || []).length > 0);
    show("results-panel", true);
  }

  async function loadResults(message) {
    const marker = JSON.stringify(message);
    if (resultsShownFor === marker) return;
    resultsShownFor = marker;
    try {
      const response = await fetch(config.urls.results, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) renderResults(await response.json());
      else resultsShownFor = null;
    } catch (error) {
      resultsShownFor = null; // the next state change tries again
    }
  }

  // --- the socket, and polling while it is down -------------------------------------------------

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    try {
      socket = new WebSocket(`${scheme}://${location.host}${config.urls.socket}`);
    } catch (error) {
      socketClosed(null);
      return;
    }
    socket.onopen = () => {
      socketOpen = true;
      reconnectDelay = 1000;
      setLiveState("connected");
      schedulePoll();
    };
    socket.onmessage = (event) => {
      try {
        render(JSON.parse(event.data));
      } catch (error) {
        /* a malformed message is ignored: the next one carries the whole state */
      }
    };
    socket.onclose = (event) => socketClosed(event);
  }

  function socketClosed(event) {
    const wasOpen = socketOpen;
    socketOpen = false;
    socket = null;
    // 4401/4403/4404: not allowed or no such session; a reconnect would answer the same.
    if (event && event.code >= 4400 && event.code < 4500) {
      setLiveState("not available (polling)");
      schedulePoll(wasOpen ? 0 : undefined);
      return;
    }
    setLiveState("reconnecting… (polling every 2 s)");
    schedulePoll(0);
    setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 30000);
  }

  function schedulePoll(after) {
    if (socketOpen) {
      clearTimeout(pollTimer);
      pollTimer = null;
      return;
    }
    const exporting = !state || state.status === "exporting" || busy;
    const wanted = after === undefined ? (exporting ? POLL_MS : IDLE_POLL_MS) : after;
    const wait = Math.max(wanted, notBefore - Date.now(), 0);
    // An earlier poll already planned stays; a sooner one (an export just started) replaces it.
    if (pollTimer && pollAt <= Date.now() + wait) return;
    clearTimeout(pollTimer);
    pollAt = Date.now() + wait;
    pollTimer = setTimeout(poll, wait);
  }

  async function poll() {
    pollTimer = null;
    if (socketOpen) return;
    const wait = notBefore - Date.now();
    if (wait > 0) {
      schedulePoll(wait);
      return;
    }
    notBefore = Date.now() + POLL_MS;
    try {
      const response = await fetch(config.urls.status, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      // Counted from the answer, not the question: the server took its 2 s when it answered,
      // and a request that waited on the way would otherwise come back too soon.
      notBefore = Date.now() + POLL_MS;
      if (response.status === 429) {
        const seconds = Number(response.headers.get("Retry-After")) || POLL_MS / 1000;
        notBefore = Date.now() + seconds * 1000;
      } else if (response.ok) {
        if (!socketOpen) render(fromStatus(await response.json()));
        return; // render scheduled the next poll
      }
    } catch (error) {
      /* the next poll tries again */
    }
    schedulePoll();
  }

  // --- start and retry ------------------------------------------------------------------------

  function showActionError(message) {
    setText("action-error", message);
    show("action-error", Boolean(message));
  }

  async function act(url, button) {
    if (busy) return;
    busy = true;
    button.disabled = true;
    showActionError("");
    try {
      const response = await fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "X-CSRFToken": csrfToken(),
          "Content-Type": "application/json",
          Accept: "application/json",
        },
        body: "{}",
      });
      const body = await response.json().catch(() => ({}));
      if (response.status === 202) {
        resultsShownFor = null;
        show("results-panel", false);
        render({
          type: "export_progress",
          status: "exporting",
          progress_percentage: body.progress_percentage || 0,
          current_stage: "Starting the export",
          tickets_completed: body.preserved_successful_tickets || 0,
          tickets_failed: 0,
          total_tickets: body.total_tickets || (state && state.total_tickets) || 0,
          estimated_time_remaining_minutes: body.estimated_duration_minutes,
        });
        // Ask the socket for the state now (any message does), or poll.
        if (socketOpen && socket) socket.send("{}");
      } else if (body.user_message) {
        // The seed's 422 past the last retry: the failure panel says what to do.
        showActionError(body.user_message);
        render({ ...state, retry_available: false, recovery_actions: body.recovery_actions, error_category: body.error_category });
      } else {
        const error = body.error || {};
        showActionError(error.message || `The portal answered ${response.status}.`);
      }
    } catch (error) {
      showActionError("The portal could not be reached; try again.");
    } finally {
      busy = false;
      button.disabled = false;
      if (state) render(state);
    }
  }

  const start = $("start-export");
  const retry = $("retry-export");
  if (start) start.addEventListener("click", () => act(config.urls.start, start));
  if (retry) retry.addEventListener("click", () => act(config.urls.retry, retry));

  render(config.initial);
  if (config.results) renderResults(config.results);
  if (config.results) resultsShownFor = JSON.stringify(config.initial);
  connect();
})();
