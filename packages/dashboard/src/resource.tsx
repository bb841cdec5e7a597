/**
 * The pieces the list pages share: a polled API list, its loading/empty/table states, a delete (or
 * revoke) button that asks first, and a form or button action that shows its error.
 */
import type { Scope } from "@kiln/core/vocabulary";
import type { ComponentChildren } from "preact";
import { useCallback, useState } from "preact/hooks";
import { api, can } from "./api.ts";
import { ConfirmButton, Empty, Loading, useData } from "./ui.tsx";

/** GET `path` (again every `everyMs`), and its `key` array (`{ snapshots: [...] }` -> items). */
export function useResource<T>(path: string, key: string, everyMs?: number) {
  const list = useData((signal) => api<Record<string, T[]>>(path, { signal }), [path], everyMs);
  return { ...list, items: list.data?.[key] ?? [] };
}

/** A loaded list: `useResource`'s answer, or `useData`'s with the items picked out. */
export interface Items<T> {
  data: unknown;
  loading: boolean;
  items: T[];
}

/** Loading until the first answer, then `empty` for no items, else `children` (the items' view). */
export function Listed<T>({
  list,
  what,
  empty,
  children,
}: {
  list: Items<T>;
  what: string;
  empty: ComponentChildren;
  children: (items: T[]) => ComponentChildren;
}) {
  if (list.data === undefined && list.loading) return <Loading what={what} />;
  if (list.items.length === 0) return <Empty>{empty}</Empty>;
  return <>{children(list.items)}</>;
}

/** A header cell: its title, or hidden on narrow screens. */
export type Column = string | { title: string; narrow: true };

/** A `table.list` named `label`, its header (and an Actions column unless `actions` is false). */
export function Table({
  label,
  columns,
  actions = true,
  wrap = true,
  children,
}: {
  label: string;
  columns: Column[];
  actions?: boolean;
  /** In a `.table-wrap` (scrolls sideways on a phone). */
  wrap?: boolean;
  children: ComponentChildren;
}) {
  const table = (
    <table class="list" aria-label={label}>
      <thead>
        <tr>
          {columns.map((c) =>
            typeof c === "string" ? (
              <th key={c}>{c}</th>
            ) : (
              <th key={c.title} class="hide-narrow">
                {c.title}
              </th>
            ),
          )}
          {actions ? (
            <th>
              <span class="sr-only">Actions</span>
            </th>
          ) : null}
        </tr>
      </thead>
      <tbody>{children}</tbody>
    </table>
  );
  return wrap ? <div class="table-wrap">{table}</div> : table;
}

/** `Listed` around a `Table`: `row` gives each item's `<tr>` (with its key). */
export function ResourceTable<T>({
  row,
  label,
  columns,
  actions,
  wrap,
  what = `Loading ${label.toLowerCase()}`,
  ...listed
}: {
  list: Items<T>;
  /** @default "Loading <label in lower case>" */
  what?: string;
  empty: ComponentChildren;
  label: string;
  columns: Column[];
  actions?: boolean;
  wrap?: boolean;
  row: (item: T) => ComponentChildren;
}) {
  return (
    <Listed what={what} {...listed}>
      {(items) => (
        <Table label={label} columns={columns} actions={actions} wrap={wrap}>
          {items.map(row)}
        </Table>
      )}
    </Listed>
  );
}

/** A danger button that asks `question`, then DELETEs `path` and calls `done` (a list's reload). */
export function DeleteButton({
  path,
  scope,
  question,
  done,
  label = "Delete",
}: {
  path: string;
  /** The scope the key needs (the button is disabled without it). */
  scope: Scope;
  question: string;
  done: () => void;
  label?: string;
}) {
  return (
    <ConfirmButton
      label={label}
      danger
      disabled={!can(scope)}
      question={question}
      action={() => api(path, { method: "DELETE" }).then(done)}
    />
  );
}

/** An action's error and busy state: `run(fn)` clears the error, runs fn, keeps what it throws. */
export function useAction() {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  /** A form's onSubmit: no page load; `fn` gets the form and its data. */
  const submit = useCallback(
    (fn: (form: HTMLFormElement, data: FormData) => Promise<unknown>) => (e: Event) => {
      e.preventDefault();
      const form = e.target as HTMLFormElement;
      void run(() => fn(form, new FormData(form)));
    },
    [run],
  );
  return { error, busy, run, submit, setError };
}
