/** This package's version, told to MCP clients in the initialize answer. */
export const VERSION = "0.1.0";
