// "New ticket from template": makes the server-rendered form live. Switching the platform filters
// the templates, switching the template rebuilds the variable inputs (from the catalog embedded with
// json_script), and typing refreshes the preview through POST /api/v1/tickets/preview. "Dry run" and
// "Create ticket" submit the form as they do without this script, so errors come from one place.
// User text is only ever set with textContent, with bidi controls made visible (as the server's
// bidi_safe filter does). Each error is shown once: under the ticket field it is about, with the
// inputs that feed that field marked and pointing at it; the status line counts what is shown.
(function () {
  "use strict";

  const catalogElement = document.getElementById("itsm-template-catalog");
  const form = document.getElementById("new-ticket");
  if (!catalogElement || !form) return;

  const catalog = JSON.parse(catalogElement.textContent);
  const platformSelect = document.getElementById("platform");
  const templateSelect = document.getElementById("template");
  const templateDescription = document.getElementById("template-description");
  const variablesFieldset = document.getElementById("variables");
  const jobIdInput = document.getElementById("job-id");
  const statusLine = document.getElementById("preview-status");
  const previewFields = document.getElementById("preview-fields");
  const previewErrors = document.getElementById("preview-errors");
  const missingHint = document.getElementById("preview-missing");
  const jobIdError = document.getElementById("job-id-error");
  const DEBOUNCE_MS = 250;
  // LRE..RLO, LRI..PDI, LRM, RLM, ALM: shown as <U+202E> so they cannot reorder what is around them.
  const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

  // Variables the user has typed in (or all, after a submit): only these show "is required".
  const touched = new Set();
  let submitted = form.hasAttribute("data-submitted");
  let timer = null;
  let sequence = 0;

  for (const button of document.querySelectorAll("[data-no-script]")) button.hidden = true;

  function platformLabel(value) {
    const platform = catalog.platforms.find((p) => p.value === value);
    return platform ? platform.label : value;
  }

  function currentTemplate() {
    return catalog.templates.find(
      (t) => t.platform === platformSelect.value && t.name === templateSelect.value
    );
  }

  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function visibleBidi(text) {
    return String(text).replace(
      BIDI_CONTROLS,
      (control) => `<U+${control.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}>`
    );
  }

  function element(tag, attributes = {}, text = null) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === true) node.setAttribute(name, "");
      else if (value !== false && value !== null) node.setAttribute(name, value);
    }
    if (text !== null) node.textContent = visibleBidi(text);
    return node;
  }

  // --- choosing -------------------------------------------------------------------------------

  function fillTemplateOptions() {
    templateSelect.replaceChildren();
    const templates = catalog.templates.filter((t) => t.platform === platformSelect.value);
    for (const template of templates) {
      templateSelect.append(
        element("option", { value: template.name }, `${template.name} (${template.source})`)
      );
    }
    if (!templates.length) {
      templateSelect.append(
        element("option", { value: "" }, `No templates for ${platformLabel(platformSelect.value)}`)
      );
    }
  }

  function usedIn(template, variable) {
    return Object.entries(template.uses)
      .filter(([, names]) => names.includes(variable))
      .map(([field]) => field);
  }

  function variableHint(template, variable) {
    const parts = [];
    const fields = usedIn(template, variable.name);
    if (fields.length) parts.push(`Used in ${fields.join(", ")}`);
    if (variable.suggestions.length) parts.push(`one of ${variable.suggestions.join(", ")}`);
    return parts.join("; ");
  }

  function buildVariableInputs(template) {
    const previous = {};
    for (const input of variablesFieldset.querySelectorAll("[name^=var_]")) {
      previous[input.name.slice(4)] = input.value;
    }
    const legend = variablesFieldset.querySelector("legend");
    variablesFieldset.replaceChildren(legend);
    touched.clear();
    submitted = false;
    if (!template) return;
    if (!template.variables.length) {
      variablesFieldset.append(element("p", { class: "muted" }, "This template needs no variables."));
    }
    for (const variable of template.variables) {
      const id = `var-${variable.name}`;
      const wrapper = element("div", { class: "field", "data-variable": variable.name });
      wrapper.append(element("label", { for: id }, variable.name));
      const attributes = {
        id,
        name: `var_${variable.name}`,
        required: true,
        "aria-describedby": `${id}-hint ${id}-error ${id}-affects`,
      };
      let input;
      if (variable.long) {
        input = element("textarea", { ...attributes, rows: "5" });
      } else {
        input = element("input", {
          ...attributes,
          type: "text",
          autocomplete: "off",
          list: variable.suggestions.length ? `${id}-options` : null,
        });
      }
      input.value = previous[variable.name] || "";
      wrapper.append(input);
      if (variable.suggestions.length) {
        const list = element("datalist", { id: `${id}-options` });
        for (const value of variable.suggestions) list.append(element("option", { value }));
        wrapper.append(list);
      }
      wrapper.append(element("p", { class: "hint", id: `${id}-hint` }, variableHint(template, variable)));
      wrapper.append(element("p", { class: "field-error", id: `${id}-error`, hidden: true }));
      wrapper.append(element("p", { class: "field-affects", id: `${id}-affects`, hidden: true }));
      variablesFieldset.append(wrapper);
    }
    const defaults = Object.entries(template.defaults);
    if (defaults.length) {
      const note = element("p", { class: "hint", id: "template-defaults" }, "Filled in from the settings: ");
      defaults.forEach(([name, value], index) => {
        note.append(element("code", {}, name), ` = ${value}${index < defaults.length - 1 ? ", " : "."}`);
      });
      variablesFieldset.append(note);
    }
  }

  function templateChanged() {
    const template = currentTemplate();
    form.elements.platform.value = platformSelect.value;
    form.elements.template_name.value = template ? template.name : "";
    templateDescription.textContent = template
      ? visibleBidi(template.description) ||
        `From ${template.source === "file" ? "config/itsm_config.json" : "the admin"}.`
      : "";
    buildVariableInputs(template);
    const query = new URLSearchParams({ platform: platformSelect.value });
    if (template) query.set("template", template.name);
    history.replaceState(null, "", `${location.pathname}?${query}`);
    requestPreview(0);
  }

  platformSelect.addEventListener("change", () => {
    fillTemplateOptions();
    templateChanged();
  });
  templateSelect.addEventListener("change", templateChanged);

  // --- the preview ----------------------------------------------------------------------------

  function variableValues() {
    const values = {};
    for (const input of variablesFieldset.querySelectorAll("[name^=var_]")) {
      values[input.name.slice(4)] = input.value;
    }
    return values;
  }

  // An input's own messages (it is missing, or the API refused its value) and the ticket fields
  // it feeds that have a problem: marked, described by the field's message, not repeating it.
  function showInputState(wrapper, messages, affects = []) {
    const error = wrapper.querySelector(".field-error");
    const note = wrapper.querySelector(".field-affects");
    const control = wrapper.querySelector("input, textarea");
    const invalid = messages.length > 0 || affects.length > 0;
    error.textContent = visibleBidi(messages.join(" "));
    error.hidden = messages.length === 0;
    if (note) {
      note.textContent = affects.length
        ? `Feeds ${affects.join(", ")}: see the problem${affects.length === 1 ? "" : "s"} in the preview.`
        : "";
      note.hidden = affects.length === 0;
    }
    wrapper.classList.toggle("invalid", invalid);
    if (control) {
      if (invalid) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
      if (note && control.id) {
        const described = [`${control.id}-hint`, `${control.id}-error`, `${control.id}-affects`];
        for (const field of affects) described.push(`preview-${field}-error`);
        control.setAttribute("aria-describedby", described.join(" "));
      }
    }
  }

  function shownJobIdErrors() {
    return jobIdError && !jobIdError.hidden ? 1 : 0;
  }

  function problemsText(count) {
    return `${count} problem${count === 1 ? "" : "s"} to fix before creating.`;
  }

  function setStatus(text, state) {
    statusLine.textContent = text;
    statusLine.classList.toggle("ok", state === "ok");
    statusLine.classList.toggle("bad", state === "bad");
  }

  function clearDryRunNotice() {
    const existing = document.getElementById("preview-existing");
    if (existing) existing.remove();
  }

  function render(result, template) {
    clearDryRunNotice();
    const fieldErrors = Object.create(null);
    const affects = Object.create(null);
    const inputErrors = Object.create(null);
    const general = [];
    for (const error of result.errors) {
      if (Object.hasOwn(result.fields, error.field)) {
        const messages = (fieldErrors[error.field] ||= []);
        if (!messages.includes(error.message)) messages.push(error.message);
        const feeding = Object.hasOwn(template.uses, error.field) ? template.uses[error.field] : [];
        for (const name of feeding) {
          const fields = (affects[name] ||= []);
          if (!fields.includes(error.field)) fields.push(error.field);
        }
      } else {
        general.push(error.message);
      }
    }
    let shownMissing = 0;
    for (const name of result.missing) {
      if (submitted || touched.has(name)) {
        (inputErrors[name] ||= []).push(`${name} is required by this template`);
        shownMissing += 1;
      }
    }
    for (const wrapper of variablesFieldset.querySelectorAll("[data-variable]")) {
      const name = wrapper.dataset.variable;
      showInputState(wrapper, inputErrors[name] || [], affects[name] || []);
    }

    previewFields.replaceChildren();
    for (const [name, value] of Object.entries(result.fields)) {
      const messages = fieldErrors[name] || [];
      const item = element("div", {
        class: messages.length ? "preview-field invalid" : "preview-field",
        "data-field": name,
      });
      const detail = element("dd");
      detail.append(element("div", { class: "value" }, value));
      detail.append(
        element(
          "p",
          { class: "field-error", id: `preview-${name}-error`, hidden: !messages.length },
          messages.join(" ")
        )
      );
      item.append(element("dt", {}, name), detail);
      previewFields.append(item);
    }

    showGeneralErrors(general);
    missingHint.hidden = result.missing.length === 0;

    const problems =
      Object.values(fieldErrors).reduce((sum, list) => sum + list.length, 0) +
      general.length +
      shownMissing +
      shownJobIdErrors();
    if (problems) {
      setStatus(problemsText(problems), "bad");
    } else if (result.missing.length) {
      setStatus(`Still needed: ${visibleBidi(result.missing.join(", "))}.`, null);
    } else {
      setStatus(`Ready: these fields pass ${platformLabel(template.platform)}'s checks.`, null);
    }
  }

  function showGeneralErrors(messages) {
    previewErrors.replaceChildren();
    for (const message of messages) previewErrors.append(element("li", { class: "field-error" }, message));
    previewErrors.hidden = messages.length === 0;
  }

  // The error envelope's per-field messages, flattened: [["variables", "details"], "message"].
  function envelopeMessages(fields, path = []) {
    if (typeof fields === "string") return [[path, fields]];
    if (Array.isArray(fields)) return fields.flatMap((item) => envelopeMessages(item, path));
    if (fields && typeof fields === "object") {
      return Object.entries(fields).flatMap(([key, value]) => envelopeMessages(value, [...path, key]));
    }
    return [];
  }

  // A 400 from the preview (a value the API refuses, such as one over its length limit): the
  // envelope's reasons, beside the variable they name when they name one, the rest listed.
  function renderRefusal(error) {
    const variables = new Set(
      [...variablesFieldset.querySelectorAll("[data-variable]")].map((w) => w.dataset.variable)
    );
    const inputErrors = Object.create(null);
    const general = [];
    for (const [path, message] of envelopeMessages(error.fields || {})) {
      let variable = null;
      let text = message;
      if (path[0] === "variables" && variables.has(path[1])) {
        variable = path[1];
      } else if (path[0] === "variables" && path.length === 1) {
        // "details: at most 32,000 characters": a message that starts with the variable's name.
        const named = [...variables].find((name) => message.startsWith(`${name}: `));
        if (named) [variable, text] = [named, message.slice(named.length + 2)];
      }
      if (variable) (inputErrors[variable] ||= []).push(text);
      else general.push(path.length ? `${path.join(".")}: ${message}` : message);
    }
    if (!general.length && !Object.keys(inputErrors).length) general.push(error.message);
    for (const wrapper of variablesFieldset.querySelectorAll("[data-variable]")) {
      showInputState(wrapper, inputErrors[wrapper.dataset.variable] || []);
    }
    showGeneralErrors(general);
    const problems =
      general.length +
      Object.values(inputErrors).reduce((sum, list) => sum + list.length, 0) +
      shownJobIdErrors();
    setStatus(`Preview refused: ${problemsText(problems)}`, "bad");
  }

  async function refreshPreview() {
    const template = currentTemplate();
    if (!template) return;
    const mine = ++sequence;
    let response;
    try {
      response = await fetch(catalog.urls.preview, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
        },
        body: JSON.stringify({
          platform: template.platform,
          template_name: template.name,
          variables: variableValues(),
        }),
      });
    } catch (error) {
      if (mine === sequence) setStatus("Preview unavailable: the portal did not answer.", "bad");
      return;
    }
    if (mine !== sequence) return; // a newer request is on its way
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (mine !== sequence) return;
    if (response.status === 400 && body && body.error) {
      clearDryRunNotice();
      renderRefusal(body.error);
      return;
    }
    if (!response.ok || !body) {
      const message = body && body.error && body.error.message ? body.error.message : `HTTP ${response.status}`;
      setStatus(`Preview unavailable: ${visibleBidi(message)}`, "bad");
      return;
    }
    render(body, template);
  }

  function requestPreview(delay = DEBOUNCE_MS) {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, delay);
  }

  variablesFieldset.addEventListener("input", (event) => {
    const name = event.target.name || "";
    if (!name.startsWith("var_")) return;
    touched.add(name.slice(4));
    requestPreview();
  });

  jobIdInput.addEventListener("input", () => {
    showInputState(jobIdInput.closest(".field"), []);
  });
})();
