// A form generated from a retriever's input_schema: one labelled control per input, typed.

import { h, uid } from "./dom.js";

const NUMERIC = { integer: "1", number: "any", float: "any" };

function fields(schema) {
  const props = schema && typeof schema.properties === "object" ? schema.properties : schema || {};
  const requiredList = Array.isArray(schema?.required) ? schema.required : [];
  return Object.entries(props).map(([name, spec]) => ({
    name,
    spec: spec || {},
    type: spec?.type || "string",
    required: spec?.required === true || requiredList.includes(name),
  }));
}

function control(field, id, hintId) {
  const { spec, type, required } = field;
  const common = { id, name: field.name, required, "aria-describedby": hintId };
  const example = Array.isArray(spec.examples) && spec.examples.length ? spec.examples[0] : undefined;
  if (Array.isArray(spec.enum)) {
    return h("select", common,
      required ? null : h("option", { value: "" }, "—"),
      spec.enum.map((v) => h("option", { value: JSON.stringify(v), selected: v === spec.default }, String(v))));
  }
  if (type === "boolean") {
    return h("select", common,
      required ? null : h("option", { value: "" }, "—"),
      h("option", { value: "true", selected: spec.default === true }, "true"),
      h("option", { value: "false", selected: spec.default === false }, "false"));
  }
  if (type === "object" || type === "array") {
    const value = spec.default === undefined ? "" : JSON.stringify(spec.default, null, 2);
    const el = h("textarea", { ...common, rows: 3, spellcheck: "false",
      placeholder: example === undefined ? (type === "array" ? "[ ]" : "{ }") : JSON.stringify(example) });
    el.value = value;
    return el;
  }
  const attrs = { ...common, type: "text", placeholder: example === undefined ? null : String(example) };
  if (type in NUMERIC) Object.assign(attrs, { type: "number", step: NUMERIC[type] });
  else if (type === "date") attrs.type = "date";
  else if (type === "datetime") attrs.type = "datetime-local";
  const el = h("input", attrs);
  if (spec.default !== undefined && spec.default !== null) el.value = String(spec.default);
  return el;
}

/** The typed value of a control, or undefined when an optional one is left empty. */
function read(field, el) {
  const raw = el.value;
  if (raw === "") return undefined;
  if (Array.isArray(field.spec.enum)) return JSON.parse(raw);
  switch (field.type) {
    case "integer": {
      const n = Number(raw);
      if (!Number.isInteger(n)) throw new Error(`${field.name} must be a whole number`);
      return n;
    }
    case "number":
    case "float":
      return Number(raw);
    case "boolean":
      return raw === "true";
    case "object":
    case "array":
      try {
        return JSON.parse(raw);
      } catch {
        throw new Error(`${field.name} must be JSON (${field.type})`);
      }
    case "datetime":
      return new Date(raw).toISOString();
    default:
      return raw;
  }
}

/** The form; `onRun(inputs, {skipCache})` is called with the typed inputs. */
export function inputForm(schema, onRun) {
  const entries = fields(schema).map((field) => {
    const id = uid(`input-${field.name}`);
    const hintId = `${id}-hint`;
    const el = control(field, id, hintId);
    const hint = [field.type, field.required ? "required" : "optional", field.spec.description].filter(Boolean).join(" · ");
    return {
      field,
      el,
      node: h("div", { class: "field" }, h("label", { for: id }, field.name), el,
        h("span", { class: "hint", id: hintId }, hint)),
    };
  });
  const error = h("p", { class: "notice error", role: "alert", hidden: true });
  const skipId = uid("skip-cache");
  const skip = h("input", { type: "checkbox", id: skipId, name: "skip_cache" });
  const button = h("button", { type: "submit" }, "Run");
  const form = h("form", { "aria-label": "Run the retriever", onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    const inputs = {};
    try {
      for (const { field, el } of entries) {
        const value = read(field, el);
        if (value !== undefined) inputs[field.name] = value;
      }
    } catch (exc) {
      error.textContent = exc.message;
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      await onRun(inputs, { skipCache: skip.checked });
    } finally {
      button.disabled = false;
    }
  } },
  entries.length ? entries.map((e) => e.node) : h("p", { class: "meta" }, "This retriever takes no inputs."),
  h("div", { class: "field check" }, skip, h("label", { for: skipId }, "Skip the result cache")),
  error,
  button);
  return form;
}
