/** PVC names and manifests (pure; no imports of the engine: manifests.ts uses it). */
import { createHash } from "node:crypto";
import type { V1PersistentVolumeClaim } from "@kubernetes/client-node";

/** The PVC behind an engine volume name (core's `kiln-vol-<name>`): a valid DNS name, stable, readable, and distinct per name (a 48-bit hash of it). */
export function claimName(volume: string): string {
  const slug = volume
    .toLowerCase()
    .replace(/^kiln-vol-/, "")
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  const hash = createHash("sha256").update(volume).digest("hex").slice(0, 12);
  return `kiln-vol-${slug ? `${slug}-` : ""}${hash}`;
}

export interface ClaimOptions {
  storageClassName?: string;
  size?: string;
  accessMode?: "ReadWriteOnce" | "ReadWriteMany" | "ReadWriteOncePod";
  extraLabels?: Record<string, string>;
}

/** A Kiln volume's PVC: label kiln.kind=volume (+ the valid Kiln labels), its Kiln name and labels as annotations. */
export function volumeClaim(
  volume: string,
  k8sLabels: Record<string, string>,
  annotations: Record<string, string>,
  o: ClaimOptions,
): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: claimName(volume), labels: { ...o.extraLabels, ...k8sLabels }, annotations },
    spec: {
      accessModes: [o.accessMode ?? "ReadWriteOnce"],
      resources: { requests: { storage: o.size ?? "10Gi" } },
      ...(o.storageClassName === undefined ? {} : { storageClassName: o.storageClassName }),
    },
  };
}

/** A sandbox's workspace PVC `kiln-ws-<id>` (label kiln.workspace=<id>), the size of its disk. */
export function workspaceClaimManifest(id: string, diskMb: number, o: ClaimOptions): V1PersistentVolumeClaim {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name: `kiln-ws-${id}`, labels: { ...o.extraLabels, "kiln.workspace": id } },
    spec: {
      accessModes: ["ReadWriteOnce"],
      resources: { requests: { storage: `${diskMb}Mi` } },
      ...(o.storageClassName === undefined ? {} : { storageClassName: o.storageClassName }),
    },
  };
}
