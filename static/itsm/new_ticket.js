// "New ticket from template": makes the server-rendered form live. Switching the platform filters
// the templates, switching the template rebuilds the variable inputs (from the catalog embedded with
// json_script), and typing refreshes the preview through POST /api/v1/tickets/preview. "Dry run" and
// "Create ticket" submit the form as they do without this script, so errors come from one place.
// User text is only ever set with textContent.
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
  const DEBOUNCE_MS = 250;

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

  function element(tag, attributes = {}, text = null) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value === true) node.setAttribute(name, "");
      else if (value !== false && value !== null) node.setAttribute(name, value);
    }
    if (text !== null) node.textContent = text;
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
        "aria-describedby": `${id}-hint ${id}-error`,
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
      ? template.description ||
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

  function showFieldError(wrapper, messages) {
    const error = wrapper.querySelector(".field-error");
    const control = wrapper.querySelector("input, textarea");
    error.textContent = messages.join(" ");
    error.hidden = messages.length === 0;
    wrapper.classList.toggle("invalid", messages.length > 0);
    if (control) {
      if (messages.length) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
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
    const inputErrors = Object.create(null);
    const general = [];
    for (const error of result.errors) {
      if (Object.hasOwn(result.fields, error.field)) {
        (fieldErrors[error.field] ||= []).push(error.message);
        const feeding = Object.hasOwn(template.uses, error.field) ? template.uses[error.field] : [];
        for (const name of feeding) {
          (inputErrors[name] ||= []).push(error.message);
        }
      } else {
        general.push(error.message);
      }
    }
    let shownMissing = 0;
    for (const name of result.missing) {
      if (submitted || touched.has(name)) {
        (inputErrors[name] ||= []).unshift(`${name} is required by this template`);
        shownMissing += 1;
      }
    }
    for (const wrapper of variablesFieldset.querySelectorAll("[data-variable]")) {
      showFieldError(wrapper, inputErrors[wrapper.dataset.variable] || []);
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
      detail.append(element("p", { class: "field-error", hidden: !messages.length }, messages.join(" ")));
      item.append(element("dt", {}, name), detail);
      previewFields.append(item);
    }

    previewErrors.replaceChildren();
    for (const message of general) previewErrors.append(element("li", { class: "field-error" }, message));
    previewErrors.hidden = general.length === 0;
    missingHint.hidden = result.missing.length === 0;

    const problems =
      Object.values(fieldErrors).reduce((sum, list) => sum + list.length, 0) + general.length + shownMissing;
    if (problems) {
      setStatus(`${problems} problem${problems === 1 ? "" : "s"} to fix before creating.`, "bad");
    } else if (result.missing.length) {
      setStatus(`Still needed: ${result.missing.join(", ")}.`, null);
    } else {
      setStatus(`Ready: these fields pass ${platformLabel(template.platform)}'s checks.`, null);
    }
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
    if (!response.ok || !body) {
      const message = body && body.error && body.error.message ? body.error.message : `HTTP ${response.status}`;
      setStatus(`Preview unavailable: ${message}`, "bad");
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
    showFieldError(jobIdInput.closest(".field"), []);
  });
})();
