"""What a spawn costs the agent, per way of starting `/bin/sh -c 'echo hi'` (150 each, median and
minimum ms): with a Python preexec_fn (what the agent's Loop.spawn does today: it sets the child's
uids and raises its OOM score), with none (CPython then uses vfork), and with `user=` (the uid
change done in C; CPython still forks). Run in the runtime image, e.g.:

    docker run --rm --network none -v $PWD/bench:/bench:ro IMAGE python3 /bench/agent-spawn.py
"""
import subprocess, time, os
def pre():
    try:
        with open("/proc/self/oom_score_adj", "w") as f: f.write("1000")
    except OSError: pass
def run(kw, n=150):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", "echo hi"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **kw)
        p.communicate(); ts.append((time.perf_counter() - t) * 1000)
    ts.sort(); return ts[len(ts)//2], ts[0]
for name, kw in (("preexec", {"preexec_fn": pre}), ("none", {}), ("preexec", {"preexec_fn": pre}), ("none", {})):
    print(name, "median %.2f min %.2f" % run(kw))
for name, kw in (("user=1000", {"user": 1000}), ("user+pre", {"user": 1000, "preexec_fn": pre}), ("user=1000", {"user": 1000})):
    print(name, "median %.2f min %.2f" % run(kw))
