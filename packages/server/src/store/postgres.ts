/** PostgreSQL through `pg`: a small pool; `?` placeholders become `$n`. */
import pg from "pg";
import type { SqlDriver, SqlRow, SqlValue } from "./driver.ts";

function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

function driverOver(q: Queryable): Omit<SqlDriver, "transaction" | "close"> {
  return {
    dialect: "postgres",
    run: async (sql: string, params: SqlValue[] = []) => (await q.query(numbered(sql), params)).rowCount ?? 0,
    all: async (sql: string, params: SqlValue[] = []) => (await q.query(numbered(sql), params)).rows as SqlRow[],
  };
}

export class PostgresDriver implements SqlDriver {
  readonly dialect = "postgres" as const;
  readonly #pool: pg.Pool;
  readonly run: SqlDriver["run"];
  readonly all: SqlDriver["all"];

  constructor(connectionString: string) {
    this.#pool = new pg.Pool({ connectionString, max: 10 });
    // An idle client losing its connection must not crash the server; the next query reconnects.
    this.#pool.on("error", () => {});
    const base = driverOver(this.#pool);
    this.run = base.run;
    this.all = base.all;
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect();
    const base = driverOver(client);
    const tx: SqlDriver = { ...base, transaction: (inner) => inner(tx), close: async () => {} };
    try {
      await client.query("BEGIN");
      try {
        const value = await fn(tx);
        await client.query("COMMIT");
        return value;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        throw err;
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
