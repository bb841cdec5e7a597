// The runtime image, built (or found in milliseconds) by the local Docker engine, which is also
// what kube-sim's pods run on.
import { Kiln } from "@kiln/core";

export async function runtimeImage(): Promise<string> {
  const docker = new Kiln();
  try {
    return await docker.images.ensure();
  } finally {
    await docker.close();
  }
}
