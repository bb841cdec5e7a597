import { describe, expect, it } from "vitest";
import { EGRESS_BLOCKED_V4, holderScript, parseGuardOutput } from "./egress.ts";

const GUARD_OUTPUT = `addresses 192.0.2.2 172.19.0.1 2001:db8::2 
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
br-bc5adf5a21d5\t000013AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
`;

describe("the egress filter", () => {
  it("learns the host's addresses and attached subnets from the guard, not its default route", () => {
    expect(parseGuardOutput(GUARD_OUTPUT)).toEqual({
      v4: ["192.0.2.2/32", "172.19.0.1/32", "192.0.2.0/24", "172.19.0.0/16"],
      v6: ["2001:db8::2/128"],
    });
  });

  it("opens port 53 only to root (the engine's forwarder) and rejects it for everyone else", () => {
    const script = holderScript({ v4: [], v6: [] });
    const v4 = script.split("iptables-restore")[0] ?? "";
    const order = [
      "-A OUTPUT -o lo -j ACCEPT",
      "-A OUTPUT -p udp --dport 53 -m owner --uid-owner 0 -j ACCEPT",
      "-A OUTPUT -p udp --dport 53 -j REJECT",
      "-A OUTPUT -d 10.0.0.0/8 -j REJECT",
    ].map((rule) => v4.indexOf(rule));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it("rejects the special-purpose ranges but TEST-NET-3, and the host's own networks", () => {
    for (const net of [
      "0.0.0.0/8",
      "192.0.2.0/24",
      "198.18.0.0/15",
      "198.51.100.0/24",
      "240.0.0.0/4",
      "169.254.0.0/16",
    ]) {
      expect(EGRESS_BLOCKED_V4).toContain(net);
    }
    expect(EGRESS_BLOCKED_V4).not.toContain("203.0.113.0/24");
    const script = holderScript({ v4: ["203.0.113.7/32"], v6: ["2001:db8::2/128"] });
    expect(script).toContain("-A OUTPUT -d 203.0.113.7/32 -j REJECT");
    expect(script).toContain("-A OUTPUT ! -d 2000::/3 -j REJECT");
    expect(script).toContain("-A OUTPUT -d 2001:db8::2/128 -j REJECT");
    // The sleep only starts once both filters are in: set -e ends the holder on any failure.
    expect(script.indexOf("set -e")).toBe(0);
    expect(script.indexOf("kiln-network-ready")).toBeGreaterThan(script.lastIndexOf("restore"));
  });
});
