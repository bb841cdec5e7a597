// The few browser globals the tests use inside page.evaluate() callbacks (they run in Chromium).
// Node's types are the ones in scope here: the DOM library's would clash with @kiln/core's sources.
declare const document: {
  cookie: string;
  querySelectorAll(selector: string): { length: number };
};
declare const localStorage: Record<string, string>;
declare const sessionStorage: Record<string, string>;
declare const window: object;
interface HTMLImageElement {
  naturalWidth: number;
}
