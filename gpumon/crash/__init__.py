"""Crash reports: parsing (.ips, .crash, faulthandler, gdb), classification, rendering, and
locating macOS reports. Kept import-free so `gpumon crash` and the CLI start fast; import the
modules you need (`gpumon.crash.parse.parse_report`, `gpumon.crash.classify.verdict`, ...)."""
