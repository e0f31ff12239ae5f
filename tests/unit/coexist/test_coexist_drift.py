"""LIST's drift check: states from the baseline and the conf, and the stat-keyed cache that
keeps unchanged confs from being translated again."""
from __future__ import annotations

import os

from ctys_libvirt.coexist import fields as F
from ctys_libvirt.coexist.drift import DriftCache, DriftChecker
from ctys_libvirt.coexist.merge import merge
from test_coexist_merge import gen, libvirt_like


def _digests(xml: str):
    root = F.parse(xml)
    return {n: F.digest(v) for n, v in F.values(root, F.Context(F.targets_of(root), F.macs_of(root))).items()}


def test_states_and_no_translation_of_unchanged_confs(tmp_path):
    conf = tmp_path / "vm1.ctys"
    conf.write_text("MEMSIZE=16\n")
    definition = libvirt_like(merge(None, gen(), conf_path=str(conf)).xml)
    calls = []
    current = {"xml": gen()}

    def translate(path):
        calls.append(path)
        return _digests(current["xml"])

    def check(xml=definition, sha="recorded"):
        c = DriftChecker(translate, cache=DriftCache(tmp_path / "drift.sqlite"))
        try:
            return c.drift(xml, str(conf), sha)
        finally:
            c.close()

    import hashlib
    sha = hashlib.sha256(conf.read_bytes()).hexdigest()
    assert check(sha=sha) == "in sync" and calls == []          # same bytes: nothing translated
    conf.write_text("MEMSIZE=16\n# comment\n")
    assert check(sha=sha) == "in sync" and len(calls) == 1       # other bytes, same fields
    assert check(sha=sha) == "in sync" and len(calls) == 1       # cached by stat: not again
    current["xml"] = gen(memory=32)
    conf.write_text("MEMSIZE=32\n")
    os.utime(conf, ns=(1, 1))
    assert check(sha=sha) == "conf changed" and len(calls) == 2
    edited = definition.replace("<vcpu>1</vcpu>", "<vcpu>2</vcpu>")
    assert check(edited, sha) == "conf changed, domain edited" and len(calls) == 2
    both = definition.replace(">16384<", ">65536<")
    assert check(both, sha) == "conflict"
    same = definition.replace(">16384<", ">32768<")
    assert check(same, sha) == "in sync"                          # both changed, to one value
    conf.unlink()
    assert check(sha=sha) == "conf missing"


def test_a_definition_without_baseline_is_untracked(tmp_path):
    conf = tmp_path / "vm1.ctys"
    conf.write_text("x")
    c = DriftChecker(lambda p: {}, cache=DriftCache(tmp_path / "d.sqlite"))
    assert c.drift(gen(), str(conf), None) == "untracked"
    assert c.drift(gen(), None, None) == "conf missing"
    c.close()


def test_an_unusable_cache_costs_time_not_correctness(tmp_path):
    (tmp_path / "ro").mkdir()
    bad = tmp_path / "ro" / "is-a-dir.sqlite"
    bad.mkdir()
    conf = tmp_path / "vm1.ctys"
    conf.write_text("x")
    definition = libvirt_like(merge(None, gen(), conf_path=str(conf)).xml)
    c = DriftChecker(lambda p: _digests(gen(vcpu=3)), cache=DriftCache(bad))
    assert c.drift(definition, str(conf), "other") == "conf changed"
    c.close()
