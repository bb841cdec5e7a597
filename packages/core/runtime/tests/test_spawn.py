"""Loop.spawn's OOM score: children are born with 1000 whether the agent can raise its own score
around the fork (the usual way) or not (the fallback: the child raises its own in a preexec), and
the agent's own score is back where it was afterwards."""

import os
import signal
import subprocess
import sys
import unittest

from harness import RUNTIME

sys.path.insert(0, RUNTIME)
from kiln_agent.loop import Loop  # noqa: E402


def own_score():
    with open("/proc/self/oom_score_adj") as f:
        return f.read().strip()


class SpawnTest(unittest.TestCase):
    def setUp(self):
        self.loop = Loop()
        self.before = own_score()

    def tearDown(self):
        for pid in list(self.loop._children):
            self.loop._children.pop(pid)[0].wait()
        # Loop() took over this (test runner) process's SIGCHLD and signal wakeup descriptor.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.loop._wakeup.close()
        self.loop._wakeup_w.close()
        self.loop._selector.close()
        if self.loop._oom_fd is not None:
            os.close(self.loop._oom_fd)

    def child_score(self, setup=None):
        r, w = os.pipe()
        try:
            proc = self.loop.spawn(
                ["cat", "/proc/self/oom_score_adj"],
                lambda code: None,
                stdin=subprocess.DEVNULL,
                stdout=w,
                stderr=subprocess.DEVNULL,
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                setup=setup,
            )
        finally:
            os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().strip().decode()
        proc.wait()
        return out

    def test_raised_around_the_fork(self):
        self.assertIsNotNone(self.loop._oom_fd)
        self.assertEqual(self.child_score(), "1000")
        self.assertEqual(own_score(), self.before)

    def test_with_a_setup_in_the_child(self):
        ran = []
        self.assertEqual(self.child_score(setup=lambda: ran.append(1)), "1000")
        self.assertEqual(own_score(), self.before)

    def test_without_the_agent_own_score_file(self):
        # Opening /proc/self/oom_score_adj failed at start: the child raises its own.
        os.close(self.loop._oom_fd)
        self.loop._oom_fd, self.loop._oom_score = None, None
        self.assertEqual(self.child_score(), "1000")
        self.assertEqual(own_score(), self.before)

    def test_when_the_agent_cannot_raise_its_own(self):
        # A descriptor that refuses the write (read-only): the spawn still works, the child
        # raises its own score, and the agent's is untouched.
        os.close(self.loop._oom_fd)
        self.loop._oom_fd = os.open("/proc/self/oom_score_adj", os.O_RDONLY)
        self.assertEqual(self.child_score(), "1000")
        self.assertEqual(own_score(), self.before)


if __name__ == "__main__":
    unittest.main()
