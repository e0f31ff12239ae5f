"""Golden domain XML for the three example confs across boot modes, consoles and install
runs.  Regenerate with ``pytest --update-goldens`` (then review the diff)."""

import pytest
from support.translate import GOLDEN_VARIANTS, assert_valid, golden_documents, normalise
from support.paths import DATA

GOLDEN = DATA / "golden"


@pytest.fixture(scope="module")
def documents(shared_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("golden")
    return {stem: (normalise(xml, root), warnings) for stem, xml, warnings in golden_documents(shared_dir, root)}


def _stems():
    stems = []
    for label, variant, req, _ in GOLDEN_VARIANTS:
        stem = f"{label}-{variant}"
        stems += [stem + "-install", stem + "-final"] if "instmode" in req else [stem]
    return stems


@pytest.mark.parametrize("stem", _stems())
def test_golden(documents, stem, golden):
    xml, _ = documents[stem]
    assert_valid(xml)
    golden.check(GOLDEN / f"{stem}.xml", xml)


def test_no_stray_golden_files():
    expected = {f"{s}.xml" for s in _stems()}
    assert {p.name for p in GOLDEN.glob("*.xml")} == expected


def test_golden_warnings(documents):
    # debian5 asks for KVM; the fixed caps offer it, so no TCG fallback warning
    assert documents["debian5-default"][1] == []
    # kvmkern HDB exists in the fake tree: no warnings either
    assert documents["kvmkern-default"][1] == []
