/** Sign-in with an API key: the server answers with an HttpOnly session cookie; the key is not kept here. */
import { useState } from "preact/hooks";
import { signIn } from "../api.ts";
import { ErrorBox } from "../ui.tsx";

export function SignIn() {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  return (
    <main class="signin" id="main">
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            await signIn(key.trim());
            setKey("");
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1>
          <img src="/favicon.svg" alt="" width="32" height="32" /> Sign in to Kiln
        </h1>
        <label for="apikey">API key</label>
        <input
          id="apikey"
          name="apikey"
          type="password"
          autoComplete="off"
          spellcheck={false}
          placeholder="kiln_…"
          value={key}
          required
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
        />
        <ErrorBox error={error} />
        <button type="submit" class="primary" disabled={busy || key.trim() === ""}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        <p class="muted small">
          <code>kiln serve</code> prints the admin key on its first start (also in <code>~/.kiln/admin.key</code>). The
          key is exchanged for a session cookie that scripts on this page cannot read.
        </p>
      </form>
    </main>
  );
}
