"""What turns a recorded session into something to attach to an upstream issue.

One job per module: `repro_plan` (which worker process a script reproduces, from the events),
`repro_code` + `repro` (the standalone script), `script_header` (what `gpumon repro` reads
back from a script), `repro_run` (running it K times in fresh processes; the verified counts
go to `<session>/repro-runs.jsonl` through gpumon.session.repro_runs, where the Markdown report
reads them too), `bundle` + `decimate` (one zip to attach),
`inputs` + `compare` + `compare_render` (two sessions or sweeps side by side).

This package sits above gpumon.session (it loads logs and renders the Markdown report) and
never imports a framework: the scripts it writes do, in their own processes.
"""

from __future__ import annotations

# Export formats this package builds; `gpumon export -f` routes them here (session/export.py
# renders the others). `bundle` is a zip, so it needs a file rather than stdout.
REPORT_FORMATS = ("repro", "bundle", "issue")
