import { describe, expect, it } from "vitest";
import { notBlocked } from "./allow.ts";

describe("the allow-list proxy's deny list", () => {
  it("keeps only host addresses and subnets the blocked ranges do not cover, sorted and unique", () => {
    expect(
      notBlocked([
        "172.17.0.0/16", // Docker's bridge: private
        "192.168.64.0/20", // a network Docker made: private
        "10.223.0.0/24",
        "192.0.2.2/32", // documentation range (this machine's own address)
        "8.8.4.4/32", // a public address of the host: must stay
        "8.8.4.4/32",
        "100.64.0.0/9", // wider than nothing blocked? covered by 100.64/10 only in part
        "fe80::1/128", // link-local
        "2a00:1450::1/128", // global v6: must stay
      ]),
    ).toEqual(["100.64.0.0/9", "2a00:1450::1/128", "8.8.4.4/32"]);
  });

  it("is the same whatever Docker networks come and go (the proxy's name hashes it)", () => {
    const base = ["192.0.2.2/32", "172.17.0.0/16"];
    expect(notBlocked([...base, "172.30.5.0/24", "10.1.0.0/24"])).toEqual(notBlocked(base));
  });
});
