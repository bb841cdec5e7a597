/** The file browser: navigate, upload, download, view and edit text files, make folders, delete. */
import { useRef, useState } from "preact/hooks";
import { api, can, type FileEntry, request, url } from "../api.ts";
import { bytes, joinPath, parentOf } from "../format.ts";
import { Table } from "../resource.tsx";
import { ConfirmButton, Empty, ErrorBox, Loading, useData, when } from "../ui.tsx";

/** Files up to this size open in the editor; larger ones download. */
const MAX_EDIT_BYTES = 1024 * 1024;

export function FileBrowser({ sandboxId }: { sandboxId: string }) {
  const id = encodeURIComponent(sandboxId);
  const [dir, setDir] = useState("/workspace");
  const [open, setOpen] = useState<FileEntry | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState<string | undefined>(undefined);
  const uploadRef = useRef<HTMLInputElement>(null);
  const list = useData(
    (signal) => api<{ entries: FileEntry[] }>(`/v1/sandboxes/${id}/files/list`, { query: { path: dir }, signal }),
    [id, dir],
  );
  const entries = [...(list.data?.entries ?? [])].sort(
    (a, b) => Number(b.type === "directory") - Number(a.type === "directory") || a.name.localeCompare(b.name),
  );
  const crumbs = dir.split("/").filter(Boolean);

  const upload = async (files: FileList | null) => {
    if (!files || files.length === 0) return;
    setError(undefined);
    try {
      for (const file of Array.from(files)) {
        setBusy(`Uploading ${file.name}`);
        await request(`/v1/sandboxes/${id}/files`, {
          method: "PUT",
          query: { path: joinPath(dir, file.name) },
          raw: file,
          headers: { "content-type": "application/octet-stream" },
        });
      }
      list.reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(undefined);
      if (uploadRef.current) uploadRef.current.value = "";
    }
  };

  if (open) {
    return (
      <Editor
        sandboxId={sandboxId}
        entry={open}
        onClose={() => {
          setOpen(undefined);
          list.reload();
        }}
      />
    );
  }

  return (
    <div class="files">
      <div class="toolbar">
        <nav aria-label="Path" class="path">
          <button type="button" class="link" onClick={() => setDir("/")}>
            /
          </button>
          {crumbs.map((part, i) => {
            const to = `/${crumbs.slice(0, i + 1).join("/")}`;
            return (
              <span key={to}>
                <button type="button" class="link" onClick={() => setDir(to)}>
                  {part}
                </button>
                {i < crumbs.length - 1 ? "/" : ""}
              </span>
            );
          })}
        </nav>
        <label class="button" aria-disabled={!can("files:write")}>
          Upload
          <input
            ref={uploadRef}
            type="file"
            multiple
            class="sr-only"
            data-testid="upload"
            disabled={!can("files:write")}
            onChange={(e) => void upload((e.target as HTMLInputElement).files)}
          />
        </label>
        <button
          type="button"
          disabled={!can("files:write")}
          onClick={async () => {
            const name = prompt("New folder name");
            if (!name) return;
            try {
              await api(`/v1/sandboxes/${id}/files/mkdir`, { method: "POST", body: { path: joinPath(dir, name) } });
              list.reload();
            } catch (err) {
              setError(err);
            }
          }}
        >
          New folder
        </button>
        <button
          type="button"
          disabled={!can("files:write")}
          onClick={() => {
            const name = prompt("New file name");
            if (!name) return;
            setOpen({ name, path: joinPath(dir, name), type: "file", size: 0, mode: 0o644, modifiedAt: "" });
          }}
        >
          New file
        </button>
        <button type="button" onClick={list.reload}>
          Refresh
        </button>
      </div>
      {busy ? <Loading what={busy} /> : null}
      <ErrorBox error={error ?? list.error} retry={list.error ? list.reload : undefined} />
      {list.data === undefined && list.loading ? (
        <Loading what="Listing" />
      ) : (
        <div class="table-wrap">
          <Table label={`Files in ${dir}`} columns={["Name", "Size", { title: "Modified", narrow: true }]} wrap={false}>
            {dir !== "/" ? (
              <tr>
                <td colSpan={4}>
                  <button type="button" class="link" onClick={() => setDir(parentOf(dir))}>
                    ..
                  </button>
                </td>
              </tr>
            ) : null}
            {entries.map((e) => (
              <tr key={e.path} data-name={e.name}>
                <td>
                  {e.type === "directory" ? (
                    <button type="button" class="link" onClick={() => setDir(e.path)}>
                      {e.name}/
                    </button>
                  ) : (
                    <button
                      type="button"
                      class="link"
                      disabled={e.type !== "file"}
                      onClick={() => (e.size <= MAX_EDIT_BYTES ? setOpen(e) : undefined)}
                      title={e.size > MAX_EDIT_BYTES ? "Too large to open here: download it" : "Open"}
                    >
                      {e.name}
                    </button>
                  )}
                </td>
                <td>{e.type === "directory" ? "—" : bytes(e.size)}</td>
                <td class="hide-narrow">{when(e.modifiedAt)}</td>
                <td class="row-actions">
                  {e.type === "file" ? (
                    <a
                      class="button"
                      href={url(`/v1/sandboxes/${id}/files`, { path: e.path })}
                      download={e.name}
                      aria-label={`Download ${e.name}`}
                    >
                      Download
                    </a>
                  ) : null}
                  <ConfirmButton
                    label="Delete"
                    danger
                    disabled={!can("files:write")}
                    question={`Delete ${e.path}${e.type === "directory" ? " and everything in it" : ""}?`}
                    action={() =>
                      api(`/v1/sandboxes/${id}/files`, {
                        method: "DELETE",
                        query: { path: e.path, recursive: e.type === "directory" ? "true" : undefined },
                      }).then(list.reload)
                    }
                  />
                </td>
              </tr>
            ))}
          </Table>
          {entries.length === 0 ? <Empty>This folder is empty. Upload a file or make one.</Empty> : null}
        </div>
      )}
    </div>
  );
}

function Editor({ sandboxId, entry, onClose }: { sandboxId: string; entry: FileEntry; onClose: () => void }) {
  const id = encodeURIComponent(sandboxId);
  const isNew = entry.modifiedAt === "";
  const content = useData(
    async (signal) => {
      if (isNew) return { text: "", binary: false };
      const res = await request(`/v1/sandboxes/${id}/files`, { query: { path: entry.path }, signal });
      const buf = new Uint8Array(await res.arrayBuffer());
      try {
        return { text: new TextDecoder("utf-8", { fatal: true }).decode(buf), binary: false };
      } catch {
        return { text: "", binary: true };
      }
    },
    [id, entry.path],
  );
  const [draft, setDraft] = useState<string | undefined>(undefined);
  const [saving, setSaving] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState(false);
  const text = draft ?? content.data?.text ?? "";
  return (
    <div class="editor">
      <div class="toolbar">
        <button type="button" onClick={onClose}>
          ← Back
        </button>
        <strong class="mono">{entry.path}</strong>
        <button
          type="button"
          class="primary"
          disabled={saving || content.data?.binary || !can("files:write")}
          onClick={async () => {
            setSaving(true);
            setError(undefined);
            try {
              await request(`/v1/sandboxes/${id}/files`, {
                method: "PUT",
                query: { path: entry.path },
                raw: new Blob([text]),
                headers: { "content-type": "application/octet-stream" },
              });
              setSaved(true);
            } catch (err) {
              setError(err);
            } finally {
              setSaving(false);
            }
          }}
        >
          {saving ? "Saving…" : "Save"}
        </button>
        {saved ? (
          <span class="muted" role="status">
            Saved
          </span>
        ) : null}
      </div>
      <ErrorBox error={error ?? content.error} />
      {content.loading && content.data === undefined ? (
        <Loading what="Reading" />
      ) : content.data?.binary ? (
        <Empty>This file is not UTF-8 text: download it instead.</Empty>
      ) : (
        <textarea
          class="code"
          aria-label={`Contents of ${entry.name}`}
          spellcheck={false}
          value={text}
          onInput={(e) => {
            setSaved(false);
            setDraft((e.target as HTMLTextAreaElement).value);
          }}
          onKeyDown={(e) => {
            if ((e.ctrlKey || e.metaKey) && e.key === "s") {
              e.preventDefault();
              (e.currentTarget.closest(".editor")?.querySelector("button.primary") as HTMLButtonElement)?.click();
            }
          }}
        />
      )}
    </div>
  );
}
