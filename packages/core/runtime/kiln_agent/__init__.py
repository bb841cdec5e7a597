"""Kiln in-sandbox agent: serves the protocol in PROTOCOL.md on a unix socket.

One agent runs in every sandbox (see PROTOCOL.md for how it is started). It runs commands
(`exec`), hands code to one kernel process per (language, context) (`run_code`) and does file
operations (`fs_*`) for any number of client connections.

Everything happens on one thread in one `selectors` loop over non-blocking descriptors; child
exits arrive as SIGCHLD through the signal wakeup fd. Stdlib only. The agent sits in every
pooled sandbox, so modules that only some requests need are imported where they are used.

Modules, one per concern:
    main        entry point (signals, serve, shutdown)
    agent       the Agent: listener, request dispatch, env, auto-stop, OOM counter
    config      paths and settings (environment overrides for tests)
    loop        the event loop: selector, timers, child reaping
    connection  one client connection: framing (the wire codec) and its outbound queue
    validate    request field checks (EPROTO)
    request     the base class of requests in progress
    pipes       non-blocking pipe reader/writer with backpressure
    commands    `exec`
    files       `fs_*`
    kernels     one kernel process
    contexts    a code context: queue + kernel, interrupts, restarts
    run_code    `run_code` requests, result and error cleaning
    state       saving/restoring Python interpreter state for snapshots
    streams     output rings and the readers that follow them (terminals, processes)
    pty         `pty_*`: terminal sessions that outlive their connection
    processes   `proc_*`: background processes, their logs, clean shutdown
    port_forward `port_*`: TCP to 127.0.0.1:port inside the sandbox (preview URLs)
    limits      sizes and time limits
    util        logging and small helpers
"""
