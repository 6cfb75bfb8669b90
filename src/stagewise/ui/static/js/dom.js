// Elements are built node by node, never parsed from strings: API data cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value); // CSSOM: allowed by the CSP
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  add(el, children);
  return el;
}

export function add(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

/** A section with a heading that labels it. */
export function section(title, ...children) {
  const id = uid("section");
  return h("section", { class: "panel", "aria-labelledby": id }, h("h3", { id }, title), children);
}

export function fmtMs(ms) {
  if (typeof ms !== "number") return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function fmtNum(n, digits = 3) {
  if (typeof n !== "number") return n === null || n === undefined ? "—" : String(n);
  if (Number.isInteger(n)) return n.toLocaleString("en");
  return n.toLocaleString("en", { maximumFractionDigits: digits });
}

export function fmtScore(n) {
  if (typeof n !== "number") return "—";
  return Math.abs(n) >= 100 ? n.toFixed(1) : n.toPrecision(4);
}

/** A <time> for an ISO string or epoch seconds, shown in the reader's locale. */
export function fmtTime(value) {
  if (value === null || value === undefined) return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return h("time", { datetime: date.toISOString() }, date.toLocaleString());
}

export function statusBadge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

export function snippet(text, max = 140) {
  if (typeof text !== "string") return "";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(new DOMException("aborted", "AbortError"));
    });
  });
