import { describe, expect, it } from "vitest";
import { isPrivateAddress, refuseHookUrl } from "./private-address.ts";

describe("private hook addresses", () => {
  it("are loopback, private, link-local, CGNAT, ULA and other non-global addresses", () => {
    for (const a of [
      "127.0.0.1",
      "10.2.3.4",
      "172.17.0.1",
      "192.168.1.1",
      "169.254.169.254",
      "100.64.0.1",
      "0.0.0.0",
      "::1",
      "fe80::1",
      "fd00::1",
      "::ffff:127.0.0.1",
      "2001:db8::1",
    ]) {
      expect(isPrivateAddress(a), a).toBe(true);
    }
    for (const a of ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"]) {
      expect(isPrivateAddress(a), a).toBe(false);
    }
  });

  it("refuse URLs that are not http(s), carry credentials or point inward, unless allowed", async () => {
    expect(await refuseHookUrl("ftp://8.8.8.8/", false)).toMatch(/http/);
    expect(await refuseHookUrl("http://u:p@8.8.8.8/", false)).toMatch(/credentials/);
    expect(await refuseHookUrl("http://127.0.0.1:9/x", false)).toMatch(/KILN_ALLOW_PRIVATE_HOOKS/);
    expect(await refuseHookUrl("http://[::1]:9/x", false)).toMatch(/loopback/);
    expect(await refuseHookUrl("http://localhost:9/x", false)).toMatch(/loopback/);
    expect(await refuseHookUrl("http://127.0.0.1:9/x", true)).toBeUndefined();
    expect(await refuseHookUrl("https://8.8.8.8/hook", false)).toBeUndefined();
  });
});
