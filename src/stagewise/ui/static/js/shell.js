// What every view shares: error messages, announcements for screen readers, page titles.

import { ApiError, session } from "./api.js";
import { clear, h } from "./dom.js";

const messages = document.getElementById("messages");
const announcer = document.getElementById("announcer");

/** Shows an API (or any) error to the reader; nothing is swallowed. */
export function showError(error) {
  if (error?.name === "AbortError") return;
  console.error(error);
  const head = error instanceof ApiError
    ? `${error.status ? `${error.status} ` : ""}${error.code || error.type}: `
    : "Error: ";
  const extra = [];
  for (const item of (error?.details?.errors || []).slice(0, 5)) {
    extra.push(h("li", null, `${(item.loc || []).join(".")}: ${item.msg}`));
  }
  const alert = h(
    "div",
    { class: "alert", role: "alert", dataset: { code: error?.code || "" } },
    h("div", null, h("p", null, h("strong", null, head), error?.message || String(error)),
      extra.length ? h("ul", null, extra) : null),
    h("button", { type: "button", onclick: () => alert.remove() }, "Dismiss"),
  );
  messages.append(alert);
  if (error instanceof ApiError && error.status === 401) {
    // The key is no good (revoked, expired, mistyped): back to sign-in, the message stays.
    session.signOut();
    window.dispatchEvent(new CustomEvent("stagewise:signed-out"));
  }
}

export function announce(text) {
  announcer.textContent = text;
}

export function clearMessages() {
  clear(messages);
}

let focusTitle = false;

/** After a navigation the next page title takes focus, so a screen reader hears where it is. */
export function focusNextTitle() {
  focusTitle = true;
}

/** The page's title, an h2. */
export function pageTitle(text, ...extra) {
  const title = h("h2", { tabindex: "-1" }, text, extra);
  requestAnimationFrame(() => {
    if (focusTitle && title.isConnected) {
      focusTitle = false;
      title.focus({ preventScroll: true });
    }
  });
  return title;
}
