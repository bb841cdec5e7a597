"""Where the agent finds its socket, files and directories (environment overrides for tests)."""

import os


class Config:
    def __init__(self, environ):
        # The kernels sit beside this package (/opt/kiln/kernel_*.py, /opt/kiln/kiln_agent/).
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.socket_path = environ.get("KILN_AGENT_SOCKET", "/run/kiln/agent.sock")
        self.env_file = environ.get("KILN_ENV_FILE", "/etc/kiln/env.json")
        self.agent_file = environ.get("KILN_AGENT_CONFIG", "/etc/kiln/agent.json")
        home_state = os.path.join(os.path.expanduser("~"), ".kiln", "state")
        self.state_dir = environ.get("KILN_STATE_DIR", home_state)
        self.runtime_dir = environ.get("KILN_RUNTIME_DIR", here)
        self.workdir = environ.get("KILN_WORKDIR", "/workspace")
