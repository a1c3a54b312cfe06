// The header's "Copy link" button: the page's URL carries the whole state,
// so copying it shares exactly what is on screen. Where the Clipboard API
// is missing or refused (a page served over plain http from another host
// has none), the link is shown selected in a read-only field instead.
import { h } from "./dom";

const SHOWN_MS = 2500;

/** The button, the fallback field and the confirmation, in one element. */
export function copyLinkControl(): HTMLElement {
  const status = h("span", { class: "copy-status", role: "status" });
  const field = h("input", { class: "copy-link-input", readonly: true, hidden: true, "aria-label": "link to this page" });
  let timer = 0;
  const say = (text: string) => {
    status.textContent = text;
    clearTimeout(timer);
    timer = window.setTimeout(() => (status.textContent = ""), SHOWN_MS);
  };
  field.addEventListener("blur", () => (field.hidden = true));
  const copy = async () => {
    const url = location.href;
    if (await writeClipboard(url)) {
      field.hidden = true;
      say("Link copied");
      return;
    }
    field.value = url;
    field.hidden = false;
    field.focus();
    field.select();
    // the legacy copy command still works on a selection in most browsers
    say(document.execCommand("copy") ? "Link copied" : "Press Ctrl+C to copy the link");
  };
  const button = h("button", { class: "copy-link", title: "Copy a link to this page, with everything it shows", onclick: copy }, "Copy link");
  return h("span", { class: "copy-link-box" }, button, field, status);
}

/** Whether the Clipboard API took the text. */
async function writeClipboard(text: string): Promise<boolean> {
  if (!navigator.clipboard?.writeText) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}
