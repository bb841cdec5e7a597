import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../errors.ts";
import { specDockerfile, validateImageSpec } from "./custom-images.ts";

describe("ImageSpec", () => {
  it("makes one Dockerfile step per entry group, in a fixed order, labelled with the name", () => {
    const spec = validateImageSpec({
      name: "ds",
      apt: ["jq", "sqlite3"],
      pip: ["scikit-learn==1.5"],
      npm: ["left-pad"],
      run: ["echo a", "echo b"],
      files: { "/etc/b.txt": "b", "/etc/a.txt": new Uint8Array([1]) },
      env: { A: "1 2" },
      workdir: "/workspace/app",
    });
    if ("kind" in spec) throw new Error("expected a declarative spec");
    const lines = specDockerfile(spec, "kiln-runtime:abc").trim().split("\n");
    const steps = lines.map((l) => l.split(" ")[0]);
    expect(steps).toEqual([
      "FROM",
      "USER",
      "ARG",
      "RUN",
      "COPY",
      "RUN",
      "RUN",
      "RUN",
      "RUN",
      "ENV",
      "RUN",
      "WORKDIR",
      "LABEL",
      "USER",
    ]);
    expect(lines[3]).toContain("'jq' 'sqlite3'");
    expect(lines[5]).toContain("'scikit-learn==1.5'");
    expect(lines.at(-2)).toBe("LABEL kiln.image=custom kiln.image-name=ds");
    expect(lines).toContain('ENV A="1 2"');
    expect(spec.files.map(([p]) => p)).toEqual(["/etc/a.txt", "/etc/b.txt"]);
  });

  it("installs npm packages from the registry it is given, leaving no npm cache in the layer", () => {
    const spec = validateImageSpec({ name: "n", npm: ["is-number@7"] });
    if ("kind" in spec) throw new Error("expected a declarative spec");
    const withRegistry = specDockerfile(spec, "b", { npmRegistry: "https://registry.example.test/" });
    expect(withRegistry).toContain("npm install -g");
    expect(withRegistry).toContain("--registry='https://registry.example.test/'");
    expect(withRegistry).toContain("'is-number@7' && rm -rf /tmp/kiln-npm-cache");
    expect(specDockerfile(spec, "b")).not.toContain("--registry");
    // The CA files the host's npm trusts come along (a TLS-intercepting proxy's, say).
    const withCa = specDockerfile(spec, "b", { npmCafile: new Uint8Array([1]), npmExtraCa: new Uint8Array([2]) });
    expect(withCa).toContain("COPY npm-tls/ /tmp/kiln-npm-tls/");
    expect(withCa).toContain("NODE_EXTRA_CA_CERTS=/tmp/kiln-npm-tls/extra.pem npm install -g");
    expect(withCa).toContain("--cafile=/tmp/kiln-npm-tls/cafile.pem");
  });

  it("quotes arguments so a package name cannot run a command", () => {
    const spec = validateImageSpec({ name: "q", apt: ["jq; rm -rf /"] });
    if ("kind" in spec) throw new Error("expected a declarative spec");
    expect(specDockerfile(spec, "b")).toContain("'jq; rm -rf /'");
  });

  it.each([
    [{ name: "UPPER" }, "spec.name"],
    [{ name: "x", files: { "relative.txt": "a" } }, 'spec.files["relative.txt"]'],
    [{ name: "x", apt: "jq" }, "spec.apt"],
    [{ name: "x", run: ["a\nb"] }, "spec.run"],
    [{ name: "x", env: { "A-B": "1" } }, "spec.env.A-B"],
    [{ name: "x", aptt: ["jq"] }, "spec.aptt"],
    [{ name: "x", dockerfile: "Dockerfile" }, "spec"],
  ])("refuses %j naming %s", (spec, field) => {
    const err = (() => {
      try {
        validateImageSpec(spec);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).message).toContain(field);
  });
});
