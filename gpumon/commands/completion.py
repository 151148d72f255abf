"""`gpumon completion bash|zsh`: a shell completion script, generated from the real parser.

shtab reads the argparse parser, so every subcommand and flag completes as it is defined —
nothing to keep in step by hand. What argparse cannot know is added here: `--pool` completes
backends and `BACKEND:DEVICE` forms (from gpumon.spec), and LOG completes `latest` as well as
files. Install: `gpumon completion bash > ~/.local/share/bash-completion/completions/gpumon`,
or for zsh `gpumon completion zsh > ~/.zfunc/_gpumon` (with ~/.zfunc on $fpath).
"""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh")


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=SHELLS, help="the shell to print a completion script for")


def pool_words() -> list[str]:
    """What `--pool` completes to: every backend, and every BACKEND:DEVICE."""
    from gpumon.spec import BACKENDS, DEVICES

    return [*BACKENDS, *(f"{b}:{d}" for b in BACKENDS for d in DEVICES[b])]


def _preamble() -> dict[str, str]:
    words = " ".join(pool_words())
    return {
        "bash": (
            f'_gpumon_pools() {{ compgen -W "{words}" -- "$1"; }}\n'
            '_gpumon_logs() { compgen -W "latest" -- "$1"; compgen -f -- "$1"; }\n'
        ),
        "zsh": (
            f"_gpumon_pools() {{ compadd -- {words} }}\n"
            "_gpumon_logs() { compadd -- latest; _files }\n"
        ),
    }


def script(shell: str) -> str:
    import shtab

    from gpumon.commands.parser import build_parser

    parser = build_parser()
    for action in _actions(parser):
        if "--pool" in action.option_strings:
            action.complete = {"bash": "_gpumon_pools", "zsh": "_gpumon_pools"}  # type: ignore[attr-defined]
        elif action.dest == "log" and not action.option_strings:
            action.complete = {"bash": "_gpumon_logs", "zsh": "_gpumon_logs"}  # type: ignore[attr-defined]
    text = str(shtab.complete(parser, shell=shell, preamble=_preamble()[shell]))
    return text + BASH_COLONS if shell == "bash" else text


# Bash splits words at ':' (COMP_WORDBREAKS), so `--pool torch:c<Tab>` would reach shtab as
# "torch" ":" "c" and complete nothing. This wrapper re-splits the line at whitespace only, lets
# shtab complete the whole word, then trims what bash will keep before the last ':' (the
# bash-completion package's __ltrim_colon_completions does the same, but may not be installed).
BASH_COLONS = r"""
_gpumon_complete() {
  local line="${COMP_LINE:0:COMP_POINT}"
  local -a words
  read -ra words <<< "$line"
  [[ -z "$line" || "$line" == *[[:space:]] ]] && words+=("")
  COMP_WORDS=("${words[@]}")
  COMP_CWORD=$(( ${#words[@]} - 1 ))
  _shtab_gpumon
  local cur="${words[COMP_CWORD]}"
  if [[ "$cur" == *:* && "$COMP_WORDBREAKS" == *:* ]]; then
    local keep="${cur%"${cur##*:}"}"
    local i
    for i in "${!COMPREPLY[@]}"; do COMPREPLY[i]="${COMPREPLY[i]#"$keep"}"; done
  fi
}
complete -o bashdefault -F _gpumon_complete gpumon
"""


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    out = []
    for action in parser._actions:
        out.append(action)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out += _actions(sub)
    return out


def run(args: argparse.Namespace) -> int:
    sys.stdout.write(script(args.shell))
    return 0
