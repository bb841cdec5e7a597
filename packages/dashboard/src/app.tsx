/** The shell: who is signed in, the navigation, and the page for the current path. */
import { useEffect, useState } from "preact/hooks";
import { me, signOut, whoAmI } from "./api.ts";
import { AuditPage } from "./pages/audit.tsx";
import { KeysPage } from "./pages/keys.tsx";
import { QuotasPage } from "./pages/quotas.tsx";
import { SandboxPage } from "./pages/sandbox.tsx";
import { SandboxesPage } from "./pages/sandboxes.tsx";
import { SignIn } from "./pages/sign-in.tsx";
import { SnapshotsPage, VolumesPage } from "./pages/storage.tsx";
import { WebhooksPage } from "./pages/webhooks.tsx";
import { navigate, onLinkClick, path } from "./router.ts";
import { Loading } from "./ui.tsx";

const NAV = [
  ["/sandboxes", "Sandboxes"],
  ["/snapshots", "Snapshots"],
  ["/volumes", "Volumes"],
  ["/keys", "API keys"],
  ["/audit", "Audit log"],
  ["/webhooks", "Webhooks"],
  ["/quotas", "Quotas"],
] as const;

export function App() {
  useEffect(() => {
    void whoAmI();
  }, []);
  const who = me.value;
  if (who === undefined) return <Loading what="Connecting" />;
  if (who === null) return <SignIn />;
  return <Shell />;
}

function Shell() {
  const who = me.value;
  const p = path.value;
  const [menu, setMenu] = useState(false);
  useEffect(() => {
    if (p === "/" || p === "") navigate("/sandboxes", true);
    setMenu(false);
  }, [p]);
  return (
    // biome-ignore lint/a11y/noStaticElementInteractions: delegates link clicks to the router; links stay focusable
    // biome-ignore lint/a11y/useKeyWithClickEvents: the links inside handle Enter themselves
    <div class="shell" onClick={(e) => onLinkClick(e as unknown as MouseEvent)}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a href="/sandboxes" class="brand" aria-label="Kiln home">
          <img src="/favicon.svg" alt="" width="24" height="24" /> Kiln
        </a>
        <button
          type="button"
          class="icon menu-toggle"
          aria-expanded={menu}
          aria-controls="nav"
          onClick={() => setMenu(!menu)}
        >
          ☰<span class="sr-only">Menu</span>
        </button>
        <nav id="nav" class={menu ? "open" : ""} aria-label="Main">
          {NAV.map(([href, label]) => (
            <a key={href} href={href} aria-current={p.startsWith(href) ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div class="who">
          <span title={`key ${who?.key.id}`}>
            {who?.org.name} · {who?.key.name || who?.key.prefix}
          </span>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={p} />
      </main>
    </div>
  );
}

function Page({ path: p }: { path: string }) {
  const parts = p.split("/").filter(Boolean).map(decodeURIComponent);
  switch (parts[0]) {
    case "sandboxes":
      return parts[1] ? <SandboxPage id={parts[1]} tab={parts[2] ?? "terminal"} /> : <SandboxesPage />;
    case "snapshots":
      return <SnapshotsPage />;
    case "volumes":
      return <VolumesPage />;
    case "keys":
      return <KeysPage />;
    case "audit":
      return <AuditPage />;
    case "webhooks":
      return <WebhooksPage />;
    case "quotas":
      return <QuotasPage />;
    case undefined:
      return <Loading />;
    default:
      return (
        <section>
          <h1>Not found</h1>
          <p>
            No page at <code>{p}</code>. <a href="/sandboxes">Go to the sandboxes</a>.
          </p>
        </section>
      );
  }
}
