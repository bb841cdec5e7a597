export { configDir, configFile, readLogin, type SavedLogin, saveLogin } from "./config.ts";
export { parseDuration } from "./duration.ts";
export { main } from "./main.ts";
export { createProgram } from "./program.ts";
