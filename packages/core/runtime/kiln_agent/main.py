"""Entry point: `python3 -I -S -c "import sys; sys.path.insert(0, '/opt/kiln'); from kiln_agent.main import main; main(stdio=True)"`."""

import os
import signal

from .agent import Agent
from .config import Config


def main(stdio=False):
    """stdio: also serve the client attached to stdin/stdout (the runtime image's command)."""
    agent = Agent(Config(os.environ))

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        agent.serve(stdio=stdio)
    except KeyboardInterrupt:
        pass
    finally:
        agent.shutdown()

