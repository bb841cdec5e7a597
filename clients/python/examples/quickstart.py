"""Kiln from Python: run with KILN_URL and KILN_API_KEY set (`pnpm kiln serve` prints both).

KILN_URL=http://127.0.0.1:7420 KILN_API_KEY=kiln_... python3 clients/python/examples/quickstart.py
"""

import os
import tempfile

from kiln import Kiln

with Kiln() as kiln, kiln.create(language="python", labels={"example": "quickstart"}) as sandbox:
    r = sandbox.exec("python3 --version")
    print("exec:", r.exit_code, r.stdout.strip())

    execution = sandbox.run_code(
        "import time\nfor i in range(3):\n    print(i); time.sleep(0.2)\n6 * 7",
        on_stdout=lambda text: print("live:", text, end=""),  # str, as it arrives
    )
    print("run_code:", execution.text, execution.status)

    chart = sandbox.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()")
    print("chart:", [r.formats() for r in chart.results])  # [['text', 'png']]: png is base64

    sandbox.files.write("data/numbers.csv", "a,b\n1,2\n")
    print("files:", [e.name for e in sandbox.files.list("data")], sandbox.files.read_text("data/numbers.csv").split())
    with tempfile.TemporaryDirectory() as local:
        sandbox.files.download("data", os.path.join(local, "data"))  # a directory, streamed
        print("downloaded:", sorted(os.listdir(os.path.join(local, "data"))))

    print("listed:", [s.id[:12] for s in kiln.list(labels={"example": "quickstart"})])
# the sandbox is deleted here
