/** Quotes one argument for `sh`: safe characters as they are, anything else in single quotes. */
export function shellQuote(arg: string): string {
  if (arg !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'"'"'`)}'`;
}

/** `command` followed by its quoted arguments, the form Mastra's executeCommand(command, args) means. */
export function commandLine(command: string, args: readonly string[] | undefined): string {
  return args?.length ? `${command} ${args.map(shellQuote).join(" ")}` : command;
}

/** Mastra's env (values may be undefined, meaning unset) as the plain strings Kiln takes. */
export function definedEnv(...layers: (Record<string, string | undefined> | undefined)[]): Record<string, string> {
  const merged: Record<string, string | undefined> = Object.assign({}, ...layers);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(merged)) if (value !== undefined) env[key] = value;
  return env;
}
