// Builds (or finds) the runtime image once, and removes sandboxes, snapshots and volumes a crashed
// run of this suite left behind. Only this suite's: other packages' suites may be running beside it.
import { Kiln } from "@kiln/core";
import { TEST_LABELS } from "./labels.ts";

export default async function setup(): Promise<void> {
  const kiln = new Kiln();
  await kiln.images.ensure({ onProgress: (e) => process.stderr.write(`[image] ${e.message.slice(0, 120)}\n`) });
  for (const info of await kiln.list({ labels: TEST_LABELS })) {
    await (await kiln.get(info.id)).delete().catch(() => {});
  }
  for (const snapshot of await kiln.snapshots.list()) {
    if (snapshot.name.startsWith("cli-test-")) await kiln.snapshots.delete(snapshot.name).catch(() => {});
  }
  for (const volume of await kiln.volumes.list()) {
    if (volume.name.startsWith("cli-test-")) await kiln.volumes.delete(volume.name).catch(() => {});
  }
  await kiln.close();
}
