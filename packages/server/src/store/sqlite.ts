/** SQLite through Node's built-in node:sqlite: one file in the data dir, no native addon. */
import { chmodSync } from "node:fs";
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SqlDriver, SqlRow, SqlValue } from "./driver.ts";

export class SqliteDriver implements SqlDriver {
  readonly dialect = "sqlite" as const;
  readonly #db: DatabaseSync;
  /** A transaction in progress: statements from outside it wait for it. */
  #lock: Promise<void> = Promise.resolve();
  /** Prepared statements by SQL text: the store's statements are a fixed set. */
  readonly #statements = new Map<string, StatementSync>();

  constructor(path: string) {
    this.#db = new DatabaseSync(path);
    if (path !== ":memory:") chmodSync(path, 0o600);
    this.#db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    );
  }

  async run(sql: string, params: SqlValue[] = []): Promise<number> {
    await this.#lock;
    return this.#run(sql, params);
  }

  async all(sql: string, params: SqlValue[] = []): Promise<SqlRow[]> {
    await this.#lock;
    return this.#all(sql, params);
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      if (this.#statements.size < 256) this.#statements.set(sql, statement);
    }
    return statement;
  }

  #run(sql: string, params: SqlValue[]): number {
    return Number(this.#prepare(sql).run(...params).changes);
  }

  #all(sql: string, params: SqlValue[]): SqlRow[] {
    return this.#prepare(sql).all(...params) as SqlRow[];
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    const tx: SqlDriver = {
      dialect: "sqlite",
      run: async (sql, params = []) => this.#run(sql, params),
      all: async (sql, params = []) => this.#all(sql, params),
      transaction: (inner) => inner(tx),
      close: async () => {},
    };
    try {
      // Prepared once like every other statement (exec would parse them on every transaction).
      this.#run("BEGIN IMMEDIATE", []);
      try {
        const value = await fn(tx);
        this.#run("COMMIT", []);
        return value;
      } catch (err) {
        this.#run("ROLLBACK", []);
        throw err;
      }
    } finally {
      release();
    }
  }

  async close(): Promise<void> {
    await this.#lock;
    if (this.#db.isOpen) this.#db.close();
  }
}
