"""The in-sandbox agent's exec round trip over its stdio (`sh -c 'echo hi'`), N rounds after a
hello, for each runtime directory given (copied and byte-compiled first unless it is /opt/kiln),
alternating between them round by round. Run inside the runtime image as the container's user
(uid 0, only CAP_SETUID), e.g.:

    docker run --rm --network none -u 0:1000 --cap-drop ALL --cap-add SETUID \\
      -v $PWD/bench:/bench:ro -v $PWD/packages/core/runtime:/opt/src:ro IMAGE \\
      python3 /bench/agent-exec.py 200 /opt/kiln /opt/src
"""
import compileall, json, os, shutil, struct, subprocess, sys, time

rounds, dirs = int(sys.argv[1]), sys.argv[2:]
os.makedirs("/tmp/run", exist_ok=True)
agents = []
for i, src in enumerate(dirs):
    if src != "/opt/kiln":
        dst = f"/tmp/rt{i}"
        shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("tests", "__pycache__"))
        compileall.compile_dir(dst, quiet=1)
        src = dst
    env = dict(os.environ, KILN_AGENT_SOCKET=f"/tmp/run/agent{i}.sock", KILN_STATE_DIR=f"/tmp/state{i}")
    argv = [sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {src!r}); from kiln_agent.main import main; main(stdio=True)"]
    agents.append(subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env))


def frame(h):
    b = json.dumps(h).encode()
    return struct.pack(">II", len(b), 0) + b


def read(p):
    hl, bl = struct.unpack(">II", p.stdout.read(8))
    return json.loads(p.stdout.read(hl)), p.stdout.read(bl)


for p in agents:
    p.stdin.write(frame({"type": "hello", "id": 1}))
    p.stdin.flush()
    read(p)
times = [[] for _ in agents]
rid = 10
for r in range(rounds):
    for k in range(len(agents)):
        j = (r + k) % len(agents)
        p = agents[j]
        rid += 1
        t = time.perf_counter()
        p.stdin.write(frame({"type": "exec", "id": rid, "argv": ["/bin/sh", "-c", "echo hi"]}))
        p.stdin.flush()
        while read(p)[0].get("type") != "exit":
            pass
        times[j].append((time.perf_counter() - t) * 1000)
for src, ts in zip(dirs, times):
    ts.sort()
    print(f"{src}: exec round trip median {ts[len(ts) // 2]:.2f} ms, min {ts[0]:.2f} ms")
for p in agents:
    p.stdin.write(frame({"type": "exit", "id": 2}))
    p.stdin.flush()
    p.wait()
