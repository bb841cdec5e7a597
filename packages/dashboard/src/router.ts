/** A tiny history router: the server answers every dashboard path with index.html. */
import { signal } from "@preact/signals";

export const path = signal(location.pathname);

export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  path.value = location.pathname;
}

addEventListener("popstate", () => {
  path.value = location.pathname;
});

/** Same-origin links navigate without a reload (modifier clicks open tabs as usual). */
export function onLinkClick(event: MouseEvent): void {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const a = (event.target as Element | null)?.closest?.("a");
  if (!a || a.target || a.hasAttribute("download") || a.origin !== location.origin) return;
  if (a.pathname.startsWith("/v1/") || a.pathname.startsWith("/preview/") || a.pathname.startsWith("/docs")) return;
  event.preventDefault();
  navigate(a.pathname + a.search);
}
