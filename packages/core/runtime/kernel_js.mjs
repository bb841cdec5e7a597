// Kiln JavaScript/TypeScript kernel: one process = one notebook-style context.
//
// Started by the agent (see "Agent <-> kernel" in PROTOCOL.md) with fd 0 = /dev/null, fd 1 / fd 2 =
// the user's stdout / stderr, fd 3 = newline-delimited JSON requests, fd 4 = newline-delimited JSON
// events. Only Node built-ins are used; there is no npm in the sandbox.
//
// How a cell runs. Cells are compiled as classic scripts (vm.Script#runInThisContext) in the main
// context, so globals, require and import() behave as in any Node script. To make top-level bindings
// persist across cells and make re-running a cell legal, the cell is parsed with acorn (the copy
// vendored inside Node, reachable with --expose-internals) and its top-level declarations rewritten:
//
//   const {a, b} = o;   ->  ;(    {a, b} = o);   plus  var a, b;   (hoisted: global, re-declarable)
//   let x;              ->  ;( x = undefined);
//   class C {}          ->  C = class C {};
//   import d, {e as f} from 'm'  ->  ;({default: d, e: f} = await import('m'));
//
// Function declarations are left alone: at script top level they are already re-declarable globals.
// Rewrites keep every statement on its original line so stack traces point at the user's lines.
// A cell containing top-level await (or a static import) is wrapped in an async arrow function; the
// wrapper's opening sits on a line before the cell (compiled with lineOffset -1), the hoisted vars
// stay outside it, function declarations are copied to globalThis at its start, and its final
// expression statement becomes `return { value: (expr) }` (boxed, so a Promise value is shown as a
// Promise rather than silently awaited: write `await` to get the awaited value). Without top-level
// await the main result is simply the script's completion value.
//
// Known differences from module/script semantics, all deliberate trade-offs for re-runnable cells:
// top-level let/const/class become mutable global properties (no TDZ, const is reassignable, and
// `const process = 1` really overwrites globalThis.process); static imports are snapshots of the
// module's exports, not live bindings.
//
// TypeScript is converted with module.stripTypeScriptTypes in 'strip' mode, which blanks types out in
// place so positions are unchanged. Syntax that needs code generation (enum, namespace, parameter
// properties) makes strip mode fail; such a cell is converted in 'transform' mode instead, and the
// frames of its stack traces are mapped back to the original lines through the source map.

import { Buffer } from "node:buffer";
import fs from "node:fs";
import { createRequire, SourceMap, stripTypeScriptTypes } from "node:module";
import net from "node:net";
import path from "node:path";
import process from "node:process"; // a cell may overwrite globalThis.process; this binding survives
import readline from "node:readline";
import util from "node:util";
import vm from "node:vm";

// acorn is only reachable with --expose-internals, which Node accepts neither in NODE_OPTIONS nor
// after start-up (and process.execve would close fds 3 and 4): the agent must pass it.
if (!process.execArgv.includes("--expose-internals")) {
  process.stderr.write("kiln: start the kernel as `node --expose-internals kernel_js.mjs` (see PROTOCOL.md)\n");
  process.exit(2);
}
const acorn = createRequire(import.meta.url)("internal/deps/acorn/acorn/dist/acorn");

const REQUESTS_FD = 3;
const EVENTS_FD = 4;
const PARSE_OPTIONS = {
  ecmaVersion: "latest",
  sourceType: "script",
  allowAwaitOutsideFunction: true,
  allowImportExportEverywhere: true, // static imports are rewritten; a misplaced one is left to V8 to reject
};
const STACK_FRAME = /^\s+at /;
const NODE_FRAME = /^\s+at .*\bnode:[\w/-]+:\d+:\d+\)?$/;
const CELL_LOCATION = /\b(cell-\d+\.[jt]s):(\d+):(\d+)/g;
// Bounds shared with kernel_python.py: the agent cannot forward a bigger result in one frame.
const REPRESENTATION_MAX = 1 << 20;
const ERROR_VALUE_MAX = 16 << 10;
const ERROR_TRACEBACK_MAX = 32 << 10; // a JS stack starts with the message and the innermost frame: keep the head

/** Per cell file name: its line count and, for TypeScript converted in 'transform' mode, its source map. */
const cells = new Map();
let executionCount = 0;
/** The cell being run: `{ id, interrupt? }`; `interrupt` exists while a top-level await is pending. */
let running = null;

class InterruptedError extends Error {}

// ---------------------------------------------------------------------------------------- events

function send(event) {
  const data = Buffer.from(`${JSON.stringify(event)}\n`);
  // fd 4 is a blocking pipe, but a signal can still cut a large write short.
  for (let offset = 0; offset < data.length; ) offset += fs.writeSync(EVENTS_FD, data, offset);
}

/** Resolves once everything written to `stream` so far has reached the pipe. Pipe writes are only
 *  synchronous while the pipe has room: a larger or faster output is queued inside Node. */
function flushed(stream) {
  return new Promise((resolve) => stream.write("", () => resolve()));
}

function warnKernel(message) {
  process.stderr.write(`kiln: ${message}\n`);
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max)}\n[truncated]` : text;
}

// ----------------------------------------------------------------------------------------- values

function mimeBundle(value) {
  const bundle = { text: truncate(util.inspect(value), REPRESENTATION_MAX) };
  if (value !== null && typeof value === "object" && isJsonValue(value)) {
    const size = JSON.stringify(value).length;
    if (size <= REPRESENTATION_MAX) bundle.json = value;
    else warnKernel(`json output left out: ${size} bytes is too large`);
  }
  return bundle;
}

/** True when `value` is made only of plain objects, arrays, strings, finite numbers, booleans and
 *  null, so JSON.stringify would represent it exactly. Never throws. */
function isJsonValue(value, ancestors = new Set()) {
  try {
    if (value === null || typeof value === "string" || typeof value === "boolean") return true;
    if (typeof value === "number") return Number.isFinite(value);
    if (typeof value !== "object" || util.types.isProxy(value) || ancestors.has(value)) return false;
    const prototype = Object.getPrototypeOf(value);
    if (!Array.isArray(value) && prototype !== Object.prototype && prototype !== null) return false;
    ancestors.add(value);
    const plain = Object.values(value).every((item) => isJsonValue(item, ancestors));
    ancestors.delete(value);
    return plain;
  } catch {
    return false; // a throwing getter, or nesting deep enough to overflow the stack
  }
}

function display(value) {
  if (running) send({ type: "result", id: running.id, result: { ...mimeBundle(value), isMainResult: false } });
  else process.stdout.write(`${util.inspect(value)}\n`); // from a timer, after its cell ended
}

// ----------------------------------------------------------------------------------------- errors

function isError(value) {
  return util.types.isNativeError(value) || value instanceof Error;
}

/** Protocol form of anything a cell threw. */
function describeError(thrown) {
  if (thrown instanceof InterruptedError || thrown?.code === "ERR_SCRIPT_EXECUTION_INTERRUPTED") {
    return { name: "Interrupted", value: "Execution interrupted", traceback: "Interrupted: Execution interrupted" };
  }
  const value = isError(thrown) ? String(thrown.message) : typeof thrown === "string" ? thrown : util.inspect(thrown);
  return {
    name: isError(thrown) ? String(thrown.name) : "Error",
    value: truncate(value, ERROR_VALUE_MAX),
    traceback: truncate(formatThrown(thrown), ERROR_TRACEBACK_MAX),
  };
}

function formatThrown(thrown) {
  return isError(thrown) && typeof thrown.stack === "string" ? userStack(thrown.stack) : util.inspect(thrown);
}

/** The user's part of a stack: without the kernel's frames (this file and the async wrapper's call),
 *  without the Node frames below the user's (node:vm, the event loop), and with the frames of
 *  transformed TypeScript cells mapped back to the lines the user wrote. */
function userStack(stack) {
  const lines = stack
    .split("\n")
    .filter((line) => !STACK_FRAME.test(line) || !(line.includes(import.meta.url) || isWrapperFrame(line)));
  while (lines.length > 0 && NODE_FRAME.test(lines.at(-1))) lines.pop();
  return lines
    .map((line) => (STACK_FRAME.test(line) ? line.replace(CELL_LOCATION, originalLocation) : line))
    .join("\n");
}

function isWrapperFrame(line) {
  const [, file, lineNumber] = /\b(cell-\d+\.[jt]s):(\d+):\d+/.exec(line) ?? [];
  return file !== undefined && Number(lineNumber) > (cells.get(file)?.lines ?? Infinity);
}

function originalLocation(_match, file, line, column) {
  const origin = originalPosition(file, Number(line), Number(column));
  return `${file}:${origin.line}:${origin.column}`;
}

/** 1-based position in what the user wrote for a 1-based position in the code that ran. */
function originalPosition(file, line, column) {
  const entry = cells.get(file)?.sourceMap?.findEntry(line - 1, column - 1);
  return entry?.originalLine === undefined
    ? { line, column }
    : { line: entry.originalLine + 1, column: entry.originalColumn + 1 };
}

function reportUncaught(thrown) {
  process.stderr.write(`Uncaught ${formatThrown(thrown)}\n`);
}

// -------------------------------------------------------------------------------------- compiling

/** Runs `fn` without letting it print Node's one-time ExperimentalWarning for kernel internals. */
function withoutWarnings(fn) {
  const { emitWarning } = process;
  process.emitWarning = () => {};
  try {
    return fn();
  } finally {
    process.emitWarning = emitWarning;
  }
}

function toJavaScript(code, filename) {
  try {
    return withoutWarnings(() => stripTypeScriptTypes(code, { mode: "strip", sourceUrl: filename }));
  } catch (error) {
    if (error?.code !== "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX") throw error;
  }
  const js = withoutWarnings(() =>
    stripTypeScriptTypes(code, { mode: "transform", sourceMap: true, sourceUrl: filename }),
  );
  const [, map] = /\/\/# sourceMappingURL=data:application\/json;base64,(\S+)/.exec(js);
  cells.set(filename, { sourceMap: new SourceMap(JSON.parse(Buffer.from(map, "base64").toString())) });
  return js;
}

function compileCell(code, language, filename) {
  try {
    const js = language === "typescript" ? toJavaScript(code, filename) : code;
    const cell = rewriteCell(js, parse(js, code, filename));
    cells.set(filename, { ...cells.get(filename), lines: js.split("\n").length });
    cell.script = new vm.Script(cell.code, {
      filename,
      lineOffset: cell.lineOffset,
      importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER, // resolves from process.cwd()
    });
    return cell;
  } catch (error) {
    // Compilation runs no user code, so every frame of a compile error is the kernel's.
    if (isError(error) && typeof error.stack === "string")
      error.stack = error.stack
        .split("\n")
        .filter((line) => !STACK_FRAME.test(line))
        .join("\n");
    throw error;
  }
}

/** acorn's AST of `js`; a syntax error is reported the way V8 reports one, against the user's `code`. */
function parse(js, code, filename) {
  try {
    return acorn.parse(js, PARSE_OPTIONS);
  } catch (error) {
    if (!(error instanceof SyntaxError) || !error.loc) throw error;
    const { line, column } = originalPosition(filename, error.loc.line, error.loc.column + 1);
    const message = error.message.replace(/ \(\d+:\d+\)$/, "");
    const syntaxError = new SyntaxError(message);
    syntaxError.stack = `${filename}:${line}\n${code.split("\n")[line - 1]}\n${" ".repeat(column - 1)}^\n\nSyntaxError: ${message}`;
    throw syntaxError;
  }
}

/** Rewrites a cell's top-level declarations into assignments to hoisted global vars (see the top of
 *  this file). Returns `{ code, lineOffset, isAsync, hasResult }`. */
function rewriteCell(source, ast) {
  const edits = [];
  const names = new Set();
  const functions = [];
  const isAsync = ast.body.some((node) => node.type === "ImportDeclaration" || containsAwait(node));
  const replace = (start, end, text) => edits.push({ start, end, text });
  // A replacement spanning several lines is padded with newlines so later lines keep their numbers.
  const replaceNode = (node, text) =>
    replace(node.start, node.end, text + "\n".repeat(source.slice(node.start, node.end).split("\n").length - 1));

  for (const node of ast.body) {
    if (node.type === "VariableDeclaration") {
      // `const` -> `;(   `: same width, so columns on the line are kept; the `;` guards against ASI
      // joining the parenthesis to the previous line.
      replace(node.start, node.start + node.kind.length, ";(".padEnd(node.kind.length));
      for (const declarator of node.declarations) {
        collectBindings(declarator.id, names);
        // `var a` without initialiser stays a bare `a` in the comma list: it keeps its value.
        if (!declarator.init && node.kind !== "var") replace(declarator.id.end, declarator.id.end, " = undefined");
      }
      const semicolon = source[node.end - 1] === ";";
      replace(semicolon ? node.end - 1 : node.end, semicolon ? node.end - 1 : node.end, semicolon ? ")" : ");");
    } else if (node.type === "ClassDeclaration") {
      names.add(node.id.name);
      replace(node.start, node.start, `${node.id.name} = `);
      replace(node.end, node.end, ";");
    } else if (node.type === "FunctionDeclaration" && isAsync) {
      functions.push(node.id.name);
    } else if (node.type === "ImportDeclaration") {
      for (const specifier of node.specifiers) names.add(specifier.local.name);
      replaceNode(node, importAsAssignments(node, source));
    }
  }

  const last = ast.body.at(-1);
  const hasResult = last?.type === "ExpressionStatement";
  const hoisted = names.size > 0 ? `var ${[...names].join(", ")};` : "";
  if (!isAsync) return { code: `${applyEdits(source, edits)}\n${hoisted}`, lineOffset: 0, isAsync, hasResult };

  // The return goes right after the previous statement (or on the prelude line), not before the
  // expression, so that the expression's own line keeps its columns.
  const previous = ast.body.at(-2);
  const returnValue = ";return { value: (";
  if (hasResult && previous) replace(previous.end, previous.end, returnValue);
  if (hasResult) replace(last.expression.end, last.expression.end, ") }");
  const exported = functions.map((name) => `globalThis.${name} = ${name};`).join(" ");
  const prelude = `${hoisted} (async () => { ${exported}${hasResult && !previous ? returnValue : ""}`;
  return { code: `${prelude}\n${applyEdits(source, edits)}\n})()`, lineOffset: -1, isAsync, hasResult };
}

/** Whether `node` awaits outside any nested function, i.e. needs the async wrapper. */
function containsAwait(node) {
  if (node.type === "AwaitExpression" || (node.type === "ForOfStatement" && node.await)) return true;
  if (node.type.includes("Function")) return false;
  return Object.values(node).some((child) =>
    Array.isArray(child)
      ? child.some((item) => isNode(item) && containsAwait(item))
      : isNode(child) && containsAwait(child),
  );
}

function isNode(value) {
  return value !== null && typeof value === "object" && typeof value.type === "string";
}

function collectBindings(pattern, names) {
  switch (pattern.type) {
    case "Identifier":
      names.add(pattern.name);
      break;
    case "ObjectPattern":
      for (const property of pattern.properties)
        collectBindings(property.type === "RestElement" ? property : property.value, names);
      break;
    case "ArrayPattern":
      for (const element of pattern.elements) if (element) collectBindings(element, names);
      break;
    case "RestElement":
      collectBindings(pattern.argument, names);
      break;
    case "AssignmentPattern":
      collectBindings(pattern.left, names);
      break;
  }
}

function importAsAssignments(node, source) {
  const specifier = source.slice(node.source.start, node.source.end);
  const attributes = node.attributes?.length
    ? `, { with: { ${node.attributes.map((a) => source.slice(a.start, a.end)).join(", ")} } }`
    : "";
  const load = `await import(${specifier}${attributes})`;
  const namespace = node.specifiers.find((s) => s.type === "ImportNamespaceSpecifier")?.local.name;
  const fields = node.specifiers
    .filter((s) => s.type !== "ImportNamespaceSpecifier")
    .map((s) => {
      if (s.type === "ImportDefaultSpecifier") return `default: ${s.local.name}`;
      return `${s.imported.type === "Literal" ? JSON.stringify(s.imported.value) : s.imported.name}: ${s.local.name}`;
    });
  if (namespace && fields.length > 0) return `;(${namespace} = ${load}); ({ ${fields.join(", ")} } = ${namespace});`;
  if (namespace) return `;(${namespace} = ${load});`;
  if (fields.length > 0) return `;({ ${fields.join(", ")} } = ${load});`;
  return `;${load};`;
}

function applyEdits(source, edits) {
  let output = "";
  let position = 0;
  for (const { start, end, text } of edits.toSorted((a, b) => a.start - b.start)) {
    output += source.slice(position, start) + text;
    position = end;
  }
  return output + source.slice(position);
}

// ---------------------------------------------------------------------------------------- running

async function runCell({ id, code, language }) {
  const filename = `cell-${++executionCount}.${language === "typescript" ? "ts" : "js"}`;
  let error = null;
  running = { id };
  try {
    const cell = compileCell(String(code), language, filename);
    // breakOnSigint covers the synchronous part of the cell (including an async cell's code up to
    // its first await); a pending await is interrupted by the SIGINT handler through `interrupt`.
    let value = cell.script.runInThisContext({ breakOnSigint: true, displayErrors: false });
    if (cell.isAsync) {
      value = (
        await new Promise((resolve, reject) => {
          running.interrupt = () => reject(new InterruptedError());
          value.then(resolve, reject);
        })
      )?.value;
    }
    if (cell.hasResult && value !== undefined)
      send({ type: "result", id, result: { ...mimeBundle(value), isMainResult: true } });
  } catch (thrown) {
    error = describeError(thrown);
  }
  running = null;
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  send({ type: "done", id, error });
}

async function handleRequest(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return warnKernel(`ignoring a malformed request: ${line.slice(0, 200)}`);
  }
  if (request?.type !== "run") return warnKernel(`ignoring a request of unknown type ${JSON.stringify(request?.type)}`);
  return runCell(request);
}

// ---------------------------------------------------------------------------------------- startup

// Like the REPL's `<repl>`: a module name that resolves from the working directory and reads as no file.
globalThis.require = createRequire(path.join(process.cwd(), "<cell>"));
globalThis.display = display;

// A cell's stray async errors (timers, forgotten promises) must not end the context.
process.on("uncaughtException", reportUncaught);
process.on("unhandledRejection", reportUncaught);
process.on("SIGINT", () => running?.interrupt?.());

// Node warns, once per process, that vm's USE_MAIN_CONTEXT_DEFAULT_LOADER is experimental, at the first
// import() that goes through it. Make that first import here, so the warning never reaches a user.
withoutWarnings(() =>
  new vm.Script('import("node:vm")', {
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  }).runInThisContext(),
);

let queue = Promise.resolve();
readline
  .createInterface({ input: new net.Socket({ fd: REQUESTS_FD, readable: true, writable: false }), crlfDelay: Infinity })
  .on("line", (line) => {
    queue = queue.then(() => handleRequest(line)).catch(reportUncaught);
  }) // runs are sequential
  .on("close", () => process.exit(0)); // the agent is gone

send({ type: "ready" });
