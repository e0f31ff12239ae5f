"""Shell completion through the completion protocol both programs speak (the environment
the bash/zsh/fish scripts set): VM labels and UUIDs of a real defined domain and of the
inventory, conf paths, and option values; ctys-qemu also through its real bash script."""
from __future__ import annotations

import os
import subprocess
import uuid as uuidlib

import pytest

from support.cli import CLI, QEMU_CLI, child_env, run_cli
from support.confs import write_conf
from support.domains import domain_xml, unique_label

pytestmark = [pytest.mark.libvirt]


def complete(prog, env) -> subprocess.CompletedProcess:
    return subprocess.run(prog, capture_output=True, text=True, timeout=60, env=child_env(env))


def bash(prog, var, line: str, extra=None):
    words = line.split(" ")
    p = complete(prog, {var: "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1),
                        **(extra or {})})
    assert p.returncode == 0 and p.stderr == "", p.stderr
    return p.stdout.split()


def zsh(prog, var, line: str, extra=None) -> str:
    p = complete(prog, {var: "complete_zsh", "_TYPER_COMPLETE_ARGS": line, **(extra or {})})
    assert p.returncode == 0, p.stderr
    return p.stdout


def fish(prog, var, line: str, extra=None):
    p = complete(prog, {var: "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "get-args",
                        "_TYPER_COMPLETE_ARGS": line, **(extra or {})})
    assert p.returncode == 0, p.stderr
    return p.stdout.split("\n")


LV = "_CTYS_LIBVIRT_COMPLETE"
QV = "_CTYS_QEMU_COMPLETE"


@pytest.fixture
def defined(vmroot, media, janitor, libvirt_conn):
    """A real defined (not running) domain with a unique label."""
    name = janitor.add(unique_label("compl"))
    uuid = str(uuidlib.uuid4())
    libvirt_conn.defineXML(domain_xml(name, uuid, media["hello"], vmroot / "s.log"))
    return name, uuid


def test_ctys_libvirt_completes_labels_and_uuids_of_real_domains(defined):
    name, uuid = defined
    prefix = name[:-3]
    for cmd in ("cancel", "console"):
        assert name in bash(CLI, LV, f"ctys-libvirt {cmd} {prefix}")
    assert bash(CLI, LV, f"ctys-libvirt cancel {uuid[:13]}") == [uuid]
    assert bash(CLI, LV, f"ctys-libvirt -c qemu:///system create {prefix}") == [name]
    assert f'"{name}"' in zsh(CLI, LV, f"ctys-libvirt cancel {prefix}")
    assert name in fish(CLI, LV, f"ctys-libvirt console {prefix}")
    # another connection has other domains: the global -c is honoured
    assert bash(CLI, LV, f"ctys-libvirt -c test:///default cancel {prefix}") == []
    assert bash(CLI, LV, "ctys-libvirt -c test:///default cancel te") == ["test"]


def test_ctys_libvirt_completes_inventory_labels_and_conf_paths(vmroot, tmp_path):
    label = unique_label("inv")
    conf = write_conf(vmroot / "tree", label)
    db = tmp_path / "inv.sqlite"
    env = {"CTYS_INVENTORY_DB": str(db)}
    assert run_cli("enumerate", str(vmroot / "tree"), "--update-db", "--format", "records",
                   env=env).returncode == 0
    assert bash(CLI, LV, f"ctys-libvirt create {label[:-2]}", env) == [label]
    assert bash(CLI, LV, f"ctys-libvirt create {label[:-2]}") == []        # not in the default DB
    assert bash(CLI, LV, f"ctys-libvirt xml {vmroot}/tree/{label[:-2]}") == [f"{conf.parent}/"]
    assert bash(CLI, LV, f"ctys-libvirt check {conf.parent}/") == [str(conf)]


@pytest.mark.parametrize("line, want", [
    ("ctys-libvirt list --format ", ["table", "records", "json"]),
    ("ctys-libvirt create x --format ", ["table", "json"]),
    ("ctys-libvirt argv x --format ", ["lines", "json"]),
    ("ctys-libvirt cancel x --mode RE", ["RESET", "REBOOT", "RESUME"]),
    ("ctys-libvirt create x --backend ", ["auto", "libvirt", "direct"]),
    ("ctys-libvirt create x --bootmode ", ["HDD", "CD", "DVD", "FDD", "USB", "PXE", "KERNEL", "VHDD"]),
    ("ctys-libvirt xml x --console CL", ["CLI", "CLI0"]),
    ("ctys-libvirt --format j", ["json"]),
    ("ctys-libvirt -c qemu:///s", ["qemu:///system", "qemu:///session"]),
    ("ctys-libvirt enumerate --format r", ["records"]),
    ("ctys-libvirt li", ["list"]),
])
def test_ctys_libvirt_completes_option_values(line, want):
    assert bash(CLI, LV, line) == want


def test_ctys_qemu_completes_actions_suboptions_and_labels(defined):
    name, uuid = defined
    prefix = name[:-3]
    assert bash(QEMU_CLI, QV, "ctys-qemu -a CR") == ["CREATE="]
    assert bash(QEMU_CLI, QV, f"ctys-qemu -a CANCEL=L:{prefix}") == [f"CANCEL=L:{name}"]
    assert bash(QEMU_CLI, QV, f"ctys-qemu -a CREATE=L:{name},CONSOLE:V") == [f"CREATE=L:{name},CONSOLE:VNC"]
    assert bash(QEMU_CLI, QV, "ctys-qemu --backend ") == ["auto", "libvirt", "direct"]
    assert "--print-completion" in bash(QEMU_CLI, QV, "ctys-qemu --pr")
    assert f'"CANCEL=L\\\\:{name}"' in zsh(QEMU_CLI, QV, f"ctys-qemu -a CANCEL=L:{prefix}")
    assert f"CANCEL=U:{uuid}" in fish(QEMU_CLI, QV, f"ctys-qemu -a CANCEL=U:{uuid[:8]}")
    p = complete(QEMU_CLI, {QV: "complete_fish", "_TYPER_COMPLETE_FISH_ACTION": "is-args",
                            "_TYPER_COMPLETE_ARGS": "ctys-qemu -a ZZZ="})
    assert p.returncode == 1          # nothing to offer: fish falls back to files


def test_ctys_qemu_bash_script_in_a_real_bash(defined):
    """The script --print-completion prints, sourced into bash: bash splits words at ':'
    and '=', so only the part after the last one is replaced."""
    name, _ = defined
    script = subprocess.run(QEMU_CLI + ["--print-completion", "bash"], capture_output=True,
                            text=True, check=True).stdout
    line = f"ctys-qemu -a CANCEL=L:{name[:-3]}"
    prog = os.path.dirname(QEMU_CLI[0]) if len(QEMU_CLI) == 1 else ""
    run = (f'{script}\nCOMP_LINE="{line}"; COMP_POINT={len(line)}; '
           f'COMP_WORDS=(ctys-qemu -a CANCEL = L : {name[:-3]}); COMP_CWORD=6\n'
           '_ctys_qemu_completion ctys-qemu; printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ)
    if prog:
        env["PATH"] = prog + os.pathsep + env["PATH"]
    p = subprocess.run(["bash", "-c", run], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and p.stdout.split() == [name], (p.stdout, p.stderr)
    for shell in ("zsh", "fish"):
        s = subprocess.run(QEMU_CLI + ["--print-completion", shell], capture_output=True, text=True)
        assert s.returncode == 0 and "_CTYS_QEMU_COMPLETE=complete_" + shell in s.stdout
