"""gpumon's subcommands, one module each, every one with `configure(parser)` and `run(args)`.

Modules are imported lazily by gpumon.cli: building the parser imports each module, so module
level stays light (argparse only); the work, and Textual, rich or the parsers, are imported in
`run`. No subcommand can drag a framework into the monitor process (tested).
"""

from __future__ import annotations

# name -> (module, one-line help), in the order `gpumon --help` lists them.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "live": ("gpumon.commands.live", "open the interactive monitor (the default)"),
    "sweep": ("gpumon.commands.sweep", "headless thread-count ramp with a scaling and crash table"),
    "pipe": ("gpumon.commands.pipe", "live figures as JSON Lines on stdout (one line per pool)"),
    "doctor": ("gpumon.commands.doctor", "what this machine can run and how crashes are captured"),
    "crash": ("gpumon.commands.crash", "summarise a crash report (.ips, .crash, faulthandler)"),
    "replay": ("gpumon.commands.replay", "play a recorded session back in the monitor"),
    "sessions": ("gpumon.commands.sessions", "list recorded sessions"),
    "export": ("gpumon.commands.export", "export a session: md, csv, json, repro, bundle, issue"),
    "repro": ("gpumon.commands.repro", "run an exported repro script K times and count"),
    "compare": ("gpumon.commands.compare", "compare two sessions or sweeps: throughput, crashes"),
    "run": ("gpumon.commands.run", "play a scenario headless and record it (sweep's exit status)"),
    "demo": ("gpumon.commands.demo", "show a threading bug live, from a built-in scenario"),
    "bisect": ("gpumon.commands.bisect", "find the release where a crash appeared or went away"),
    "envs": ("gpumon.commands.envs", "list or remove the cached framework environments"),
    "completion": ("gpumon.commands.completion", "print a bash or zsh completion script"),
}
