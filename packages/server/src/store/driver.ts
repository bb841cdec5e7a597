/** What sql-store.ts needs from a database: `?` placeholders, rows as plain objects. */
export type SqlValue = string | number | null;
export type SqlRow = Record<string, unknown>;

export interface SqlDriver {
  readonly dialect: "sqlite" | "postgres";
  /** Rows changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
  all(sql: string, params?: SqlValue[]): Promise<SqlRow[]>;
  /** One transaction; statements of other callers wait until it ends. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
