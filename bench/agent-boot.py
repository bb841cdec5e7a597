"""The in-sandbox agent's own cost from start to its first answer, N boots.

Run inside the runtime image as the container's user (uid 0, only CAP_SETUID), e.g.:

    docker run --rm --network none -u 0:1000 --cap-drop ALL --cap-add SETUID \
      -v $PWD/bench:/bench:ro -v $PWD/packages/core/runtime:/opt/src:ro IMAGE \
      python3 /bench/agent-boot.py /opt/src 30

argv: a runtime directory (copied and byte-compiled first unless it is /opt/kiln), rounds.
Prints the median wall time to the `hello` answer and the CPU per boot (the agent and whatever
it started before it was told to `exit`, or SIGTERMed when it does not know `exit`).
"""
import json, os, resource, struct, subprocess, sys, time, shutil, compileall
src, rounds = sys.argv[1], int(sys.argv[2])
if src != "/opt/kiln":
    shutil.copytree(src, "/tmp/rt", dirs_exist_ok=True, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    compileall.compile_dir("/tmp/rt", quiet=1)
    src = "/tmp/rt"
os.makedirs("/tmp/run", exist_ok=True)
env = dict(os.environ, KILN_AGENT_SOCKET="/tmp/run/agent.sock", KILN_STATE_DIR="/tmp/state")
argv = [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {src!r}); from kiln_agent.main import main; main(stdio=True)"]
def frame(h):
    b = json.dumps(h).encode(); return struct.pack(">II", len(b), 0) + b
def read(p):
    hdr = p.stdout.read(8); hl, bl = struct.unpack(">II", hdr); return json.loads(p.stdout.read(hl)), p.stdout.read(bl)
walls = []
for i in range(rounds):
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    p.stdin.write(frame({"type": "hello", "id": 1})); p.stdin.flush()
    h, _ = read(p)
    walls.append((time.perf_counter() - t) * 1000)
    p.stdin.write(frame({"type": "exit", "id": 2})); p.stdin.flush()
    try:
        p.wait(0.5)
    except subprocess.TimeoutExpired:
        p.terminate(); p.wait()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
walls.sort()
print(f"{src}: hello after median {walls[len(walls)//2]:.1f} ms, min {walls[0]:.1f}; cpu per boot {(ru.ru_utime + ru.ru_stime) / rounds * 1000:.1f} ms")
