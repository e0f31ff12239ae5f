"""Shell completion for ``ctys-qemu`` (an argparse parser, so click's machinery does not
apply).  The protocol is the one typer uses for ``ctys-libvirt``: the shell runs the
program with ``_CTYS_QEMU_COMPLETE=complete_bash|complete_zsh|complete_fish`` and the
words so far (bash: ``COMP_LINE``/``COMP_POINT`` from our script, or ``COMP_WORDS``/
``COMP_CWORD``; zsh and fish: ``_TYPER_COMPLETE_ARGS``), and prints the candidates."""
from __future__ import annotations

import os
import shlex
import sys
from typing import List, Optional, Tuple

from ctys_libvirt.cli import complete as C

ENV = "_CTYS_QEMU_COMPLETE"
ACTIONS = ("CREATE=", "CANCEL=", "LIST", "ENUMERATE", "INFO")
SUBOPTS = {
    "CREATE": ("L:", "LABEL:", "U:", "UUID:", "F:", "FILENAME:", "BOOTMODE:", "INSTMODE:", "KERNEL:",
               "CONSOLE:", "ARGSADD:", "CONNECT", "REUSE", "RECONNECT", "RESUME", "USER:", "BASEPATH:",
               "WAITC:", "WAITS:", "PING:", "SSHPING:"),
    "CANCEL": ("L:", "LABEL:", "U:", "UUID:", "ALL", "POWEROFF", "FORCE", "RESET", "REBOOT", "PAUSE",
               "SUSPEND", "RESUME", "TIMEOUT:"),
    "LIST": ("MACHINE", "MAXKEY", "TERSE", "TITLE", "TITLEIDX", "TAB_TCP", "TAB_GEN:", "SORT", "SERVER",
             "CLIENT", "BOTH", "LABEL", "UUID", "MAC", "TCP", "ID"),
    "ENUMERATE": ("MACHINE", "TERSE", "TITLE", "B:", "MATCHVSTAT:", "TAB_GEN:", "SORT"),
    "INFO": ("MACHINE",),
}
VALUES = {"CONSOLE": C.CONSOLES, "BOOTMODE": C.BOOTMODES,
          "MATCHVSTAT": ("ACTIVE", "DISABLED", "PRESENT", "ALL")}
LABEL_KEYS = ("L", "LABEL", "U", "UUID")
OPTION_VALUES = {"-t": ("QEMU", "ALL"), "-T": ("QEMU", "ALL"), "--backend": C.BACKENDS,
                 "--transport": ("ssh", "tcp", "tls", "libssh", "libssh2"), "--connect": C.URIS}


def _option_strings() -> List[str]:
    import argparse

    from ctys_libvirt.cli.ctys_qemu import build_parser

    return [o for a in build_parser()._actions if a.help != argparse.SUPPRESS
            for o in a.option_strings]


def _vm_names() -> List[str]:
    return list(dict.fromkeys(C.domain_names(None) + C.inventory_names()))


def _suboption(incomplete: str) -> List[str]:
    """`ACTION=sub,sub,part`: complete the last suboption (keys, values, VM labels)."""
    action, _, rest = incomplete.partition("=")
    keys = SUBOPTS.get(action.upper())
    if keys is None:
        return []
    head, sep, part = rest.rpartition(",")
    prefix = f"{action}={head}{sep}"
    key, colon, value = part.partition(":")
    if colon and key.upper() in LABEL_KEYS:
        return [f"{prefix}{key}:{n}" for n in _vm_names() if n.startswith(value)]
    if colon and key.upper() in VALUES:
        return [f"{prefix}{key}:{v}" for v in C.choose(VALUES[key.upper()], value)]
    return [prefix + k for k in C.choose(keys, part)]


def candidates(args: List[str], incomplete: str) -> List[str]:
    prev = args[-1] if args else ""
    if prev == "-a":
        if "=" in incomplete:
            return _suboption(incomplete)
        return C.choose(ACTIONS, incomplete)
    if prev in OPTION_VALUES:
        return C.choose(OPTION_VALUES[prev], incomplete)
    if incomplete.startswith("-"):
        return [o for o in _option_strings() if o.startswith(incomplete)]
    return []


def _words_bash() -> Tuple[List[str], str, str]:
    """(args before the word, the word, the part of it bash replaces)."""
    line = os.environ.get("COMP_LINE")
    if line is not None:
        point = int(os.environ.get("COMP_POINT", len(line)))
        line = line[:point]
        try:
            words = shlex.split(line)
        except ValueError:             # an open quote: complete the last word as typed
            words = line.split()
        if line.endswith(" ") or not words:
            words.append("")
        # bash replaces only the part of the word after its last word-break character
        breaks = os.environ.get("COMP_WORDBREAKS", "\"'><=;|&(:")
        cut = max((words[-1].rfind(c) for c in breaks if c not in "\"'"), default=-1)
        return words[1:-1], words[-1], words[-1][:cut + 1]
    words = shlex.split(os.environ.get("COMP_WORDS", ""))
    cword = int(os.environ.get("COMP_CWORD", len(words)))
    inc = words[cword] if cword < len(words) else ""
    return words[1:cword], inc, ""


def _words_args() -> Tuple[List[str], str]:
    text = os.environ.get("_TYPER_COMPLETE_ARGS", "")
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    args = words[1:]
    if args and not text.endswith(" "):
        return args[:-1], args[-1]
    return args, ""


def respond(mode: str) -> int:
    """Print the candidates for the shell named by ``mode``; the exit status is fish's
    'are there candidates' answer."""
    if mode == "complete_bash":
        args, inc, cut = _words_bash()
        for c in candidates(args, inc):
            print(c[len(cut):] if c.startswith(cut) else c)
        return 0
    args, inc = _words_args()
    cands = candidates(args, inc)
    if mode == "complete_zsh":
        if not cands:
            print("_files")
        else:
            esc = [c.replace('"', '""').replace("'", "''").replace("$", "\\$")
                   .replace("`", "\\`").replace(":", r"\\:") for c in cands]
            print("_arguments '*: :((" + "\n".join(f'"{e}"' for e in esc) + "))'")
        return 0
    if mode == "complete_fish":
        if os.environ.get("_TYPER_COMPLETE_FISH_ACTION") == "is-args":
            return 0 if cands else 1
        for c in cands:
            print(c)
        return 0
    print(f"ctys-qemu: error: unknown completion mode {mode!r} "
          "(use complete_bash, complete_zsh or complete_fish)", file=sys.stderr)
    return 1


SCRIPTS = {
    "bash": """_ctys_qemu_completion() {
    local IFS=$'\\n'
    COMPREPLY=( $( env COMP_LINE="$COMP_LINE" COMP_POINT="$COMP_POINT" \\
                   COMP_WORDBREAKS="$COMP_WORDBREAKS" %(var)s=complete_bash $1 ) )
    return 0
}
complete -o default -F _ctys_qemu_completion ctys-qemu
""",
    "zsh": """#compdef ctys-qemu
_ctys_qemu_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" %(var)s=complete_zsh ctys-qemu)
}
compdef _ctys_qemu_completion ctys-qemu
""",
    "fish": """complete --command ctys-qemu --no-files --arguments "(env %(var)s=complete_fish \
_TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) ctys-qemu)" \
--condition "env %(var)s=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args \
_TYPER_COMPLETE_ARGS=(commandline -cp) ctys-qemu"
""",
}


def script(shell: str) -> Optional[str]:
    s = SCRIPTS.get(shell)
    return s % {"var": ENV} if s else None
