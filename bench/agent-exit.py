"""The in-sandbox agent's own share of a delete: from the `exit` frame to its acknowledgement and
to the process being reaped, alone and under tini (the runtime image's PID 1), N rounds each,
after a hello and one exec (the cold cycle's state). Run inside the runtime image as the
container's user (uid 0, only CAP_SETUID), e.g.:

    docker run --rm --network none -u 0:1000 --cap-drop ALL --cap-add SETUID \\
      -v $PWD/bench:/bench:ro IMAGE python3 /bench/agent-exit.py 30
"""
import json, os, struct, subprocess, sys, time
os.makedirs("/tmp/run", exist_ok=True)
env = dict(os.environ, KILN_AGENT_SOCKET="/tmp/run/agent.sock", KILN_STATE_DIR="/tmp/state")
agent = [sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, '/opt/kiln'); from kiln_agent.main import main; main(stdio=True)"]
def frame(h):
    b = json.dumps(h).encode(); return struct.pack(">II", len(b), 0) + b
def read(p):
    hdr = p.stdout.read(8); hl, bl = struct.unpack(">II", hdr); return json.loads(p.stdout.read(hl)), p.stdout.read(bl)
res = {}
for name, argv in (("agent", agent), ("tini+agent", ["/usr/bin/tini", "-s", "--"] + agent)):
    acks, gone = [], []
    for i in range(int(sys.argv[1])):
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        p.stdin.write(frame({"type": "hello", "id": 1})); p.stdin.flush(); read(p)
        p.stdin.write(frame({"type": "exec", "id": 2, "argv": ["/bin/sh", "-c", "echo hi"]})); p.stdin.flush()
        while True:
            h, _ = read(p)
            if h.get("type") == "exit": break
        t = time.perf_counter()
        p.stdin.write(frame({"type": "exit", "id": 3})); p.stdin.flush()
        read(p); acks.append((time.perf_counter() - t) * 1000)
        p.wait(); gone.append((time.perf_counter() - t) * 1000)
    acks.sort(); gone.sort()
    print(f"{name}: exit sent -> ack median {acks[len(acks)//2]:.2f} ms, -> process reaped median {gone[len(gone)//2]:.2f} ms (min {gone[0]:.2f})")
