"""examples/terraform/workspace-identity, the module Coder templates use to pick a workspace's client id, evaluated by
a real terraform (v1.0.3, tests/terraform/terraform_binary.py) and compared with fic-reconcile's own
shard_index(ns, size, "sha1"): the template and the job must put every namespace on the same pool identity.

Evaluating thousands of module instances through for_each is slow (20,000 took over 3 minutes), so the bulk
comparison evaluates the module's own shard expression, read from main.tf, for every case in one `terraform
console`; a small for_each over the real module checks its wiring (jsondecode, index, outputs)."""

from __future__ import annotations

import json
import os
import random
import re
import string
import unicodedata
import uuid
from pathlib import Path

import pytest

from jobs.fic_reconcile.shard import shard_index
from tests.terraform.terraform_binary import ROOT, TerraformUnavailable, run_terraform, terraform_path

EXAMPLES = ROOT / "examples" / "terraform"
MODULE = EXAMPLES / "workspace-identity"
SIZES = list(range(1, 41))
# The one line of the module the tests evaluate in bulk, and the only two names it may refer to.
SHARD_LINE = re.compile(r"^[ \t]*shard_index[ \t]*=[ \t]*(\S.*?)[ \t]*$", re.M)
REFERENCE = re.compile(r"\b(?:var|local|module|data|path|each|count|self)\.[A-Za-z_][\w-]*")
INPUTS = {"local.namespace": "ns", "local.pool_size": "size"}


@pytest.fixture(scope="module")
def terraform() -> Path:
    try:
        return terraform_path()
    except TerraformUnavailable as exc:
        pytest.skip(f"terraform could not be obtained, the Terraform module is untested: {exc}")


def namespaces() -> list[str]:
    """500+ names: Kubernetes-shaped ones (DNS-1123 labels, 1-63 characters, digits), and non-ASCII and odd
    characters, which Kubernetes refuses but which must still agree (UTF-8 bytes on both sides)."""
    rng = random.Random(20240613)
    alphabet = string.ascii_lowercase + string.digits
    names = [
        *("ws-ü", "ameide-ws-ünïcode", "ameide-ws-名前", "ws-🚀", "ws-ß-ø-å", "Ω"),
        *("0", "7", "42", "0000", "1234567890", "ameide-ws-0042", "coder-ws-a", "ameide-ws-alice", "a", "-"),
        *("a" * 63, "9" * 63, "ameide-ws-" + "x" * 53, "ws with spaces", 'ws-"quoted"', "ws-\\back", "ws-${x}"),
        *("ws-%{if}", "ws-\n-newline", "ws-\t-tab"),
    ]
    for i in range(250):
        length = 1 + i % 63
        names.append("".join(rng.choice(alphabet + "-") for _ in range(length)))
    names += [f"ameide-ws-user{i:03d}" for i in range(200)]
    names += [
        "ameide-ws-" + "".join(rng.choice("äöüéèçñ" + alphabet) for _ in range(rng.randint(1, 20))) for _ in range(40)
    ]
    names = list(dict.fromkeys(names))  # unique, order kept
    assert len(names) >= 500 and max(map(len, names)) == 63
    # Terraform normalizes every string to Unicode NFC; these are already NFC, so both sides hash the same bytes.
    assert all(unicodedata.normalize("NFC", ns) == ns for ns in names)
    return names


def module_shard_expression() -> str:
    """The module's shard_index expression, with its two inputs renamed to the for-expression's `ns` and `size`."""
    text = (MODULE / "main.tf").read_text()
    found = SHARD_LINE.findall(text)
    assert len(found) == 1, f"expected exactly one `shard_index = ...` line in {MODULE / 'main.tf'}, found {found}"
    (expression,) = found
    assert set(REFERENCE.findall(expression)) == set(INPUTS), expression
    # ... and the two inputs mean what the rename assumes.
    assert re.search(r"^[ \t]*namespace[ \t]*=[ \t]*var\.namespace[ \t]*$", text, re.M)
    assert re.search(r"^[ \t]*pool_size[ \t]*=[ \t]*length\(local\.client_ids\)[ \t]*$", text, re.M)
    assert re.search(r"^[ \t]*client_ids[ \t]*=[ \t]*jsondecode\(var\.client_ids_json\)[ \t]*$", text, re.M)
    return REFERENCE.sub(lambda m: INPUTS[m.group(0)], expression)


def console(terraform: Path, workdir: Path, expression: str) -> object:
    """One `terraform console` evaluating jsonencode(expression) in `workdir`; the decoded JSON value."""
    done = run_terraform("console", cwd=workdir, stdin=f"jsonencode({expression})\n")
    # console prints an error diagnostic but may still exit 0: the error text is checked too.
    assert done.returncode == 0 and "Error" not in done.stderr + done.stdout, done.stdout + done.stderr
    return json.loads(json.loads(done.stdout.strip()))  # an HCL string literal holding the JSON document


def write_cases(workdir: Path, cases: object) -> None:
    # Cases reach terraform as a JSON file, never as HCL literals: no quoting, no "${" template to escape.
    (workdir / "cases.json").write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")


def test_the_module_has_exactly_one_shard_expression_in_terms_of_its_two_inputs() -> None:
    assert module_shard_expression() == "parseint(substr(sha1(ns), 0, 8), 16) % size"


@pytest.fixture(scope="module")
def bulk(terraform: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[int]]:
    """The module's expression for every namespace x pool size 1..40, in one terraform console call."""
    workdir = tmp_path_factory.mktemp("tf-bulk")
    names = [*namespaces(), "ws-u\u0308"]  # the last: "ws-ü" decomposed (NFD), see the NFC test
    write_cases(workdir, {"names": names, "sizes": SIZES})
    (workdir / "main.tf").write_text(
        "locals {\n"
        '  cases = jsondecode(file("${path.module}/cases.json"))\n'
        f"  results = [for ns in local.cases.names : [for size in local.cases.sizes : {module_shard_expression()}]]\n"
        "}\n"
    )
    results = console(terraform, workdir, "local.results")
    assert isinstance(results, list) and len(results) == len(names)
    return dict(zip(names, results, strict=True))


def test_the_module_expression_equals_shard_index_sha1_for_every_case(bulk: dict[str, list[int]]) -> None:
    names = namespaces()
    wrong = [
        (ns, size, got, shard_index(ns, size, "sha1"))
        for ns in names
        for size, got in zip(SIZES, bulk[ns], strict=True)
        if got != shard_index(ns, size, "sha1")
    ]
    assert wrong == [], (
        f"{len(wrong)} of {len(names) * len(SIZES)} cases differ (ns, size, terraform, python): {wrong[:10]}"
    )


def test_terraform_hashes_the_nfc_form_of_a_name(bulk: dict[str, list[int]]) -> None:
    # Terraform normalizes strings to NFC before hashing: a decomposed name gets its composed form's shard.
    # Kubernetes namespaces are DNS-1123 labels (a-z, 0-9, '-'), so no real namespace is affected.
    decomposed = "ws-u\u0308"
    composed = unicodedata.normalize("NFC", decomposed)
    assert composed == "ws-ü" != decomposed
    assert bulk[decomposed] == [shard_index(composed, size, "sha1") for size in SIZES]
    assert bulk[decomposed] != [shard_index(decomposed, size, "sha1") for size in SIZES]


def test_the_crc32_rule_puts_most_names_elsewhere(bulk: dict[str, list[int]]) -> None:
    # A template using this module needs fic-reconcile to run with --shard-hash sha1: under the default crc32
    # rule most namespaces would get their FIC on another identity than the one the template annotates.
    names = namespaces()
    for size in (2, 3, 8, 40):
        differ = sum(bulk[ns][size - 1] != shard_index(ns, size, "crc32") for ns in names)
        assert differ > len(names) * (1 - 1 / size) * 0.8, (size, differ)


def module_block(workdir: Path) -> str:
    """The shipped module (by a relative path, as Terraform wants a local one), once per entry of cases.json."""
    source = os.path.relpath(MODULE, workdir)
    assert source.startswith("../"), source
    return (
        "locals {\n"
        '  cases = jsondecode(file("${path.module}/cases.json"))\n'
        "}\n\n"
        'module "workspace_identity" {\n'
        f'  source   = "{source}"\n'
        "  for_each = local.cases\n\n"
        "  namespace       = each.value.namespace\n"
        "  client_ids_json = each.value.client_ids_json\n"
        "}\n"
    )


def test_the_real_module_through_for_each(terraform: Path, tmp_path: Path) -> None:
    rng = random.Random(7)
    names = ["ameide-ws-alice", "coder-ws-a", "ws-ü", "0042", "z" * 63]
    pools = {
        (ns, size): [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(size)]
        for ns in names
        for size in (1, 3, 7)
    }
    keys = {f"case{i}": case for i, case in enumerate(pools)}
    write_cases(
        tmp_path,
        {k: {"namespace": ns, "client_ids_json": json.dumps(pools[ns, size])} for k, (ns, size) in keys.items()},
    )
    (tmp_path / "main.tf").write_text(module_block(tmp_path))
    init = run_terraform("init", "-input=false", "-no-color", cwd=tmp_path)  # a local module: nothing downloaded
    assert init.returncode == 0, init.stdout + init.stderr
    got = console(
        terraform,
        tmp_path,
        "{for k, m in module.workspace_identity : k => {shard_index = m.shard_index, client_id = m.client_id}}",
    )
    expected = {}
    for k, (ns, size) in keys.items():
        index = shard_index(ns, size, "sha1")
        expected[k] = {"shard_index": index, "client_id": pools[ns, size][index]}
    assert got == expected


@pytest.mark.parametrize(
    "client_ids_json",
    ["[]", "{}", '"5f3c8a1e-2b4d-4c6e-9f7a-1b2c3d4e5f60"', "not json", '[""]', '["  "]', "[1]", "[null]", '["a", "A"]'],
)
def test_the_module_refuses_a_pool_fic_reconcile_refuses(terraform: Path, tmp_path: Path, client_ids_json: str) -> None:
    write_cases(tmp_path, {"bad": {"namespace": "ameide-ws-alice", "client_ids_json": client_ids_json}})
    (tmp_path / "main.tf").write_text(module_block(tmp_path))
    assert run_terraform("init", "-input=false", "-no-color", cwd=tmp_path).returncode == 0
    # `terraform plan` (no providers, no resources: it runs offline) fails on the variable's validation block.
    plan = run_terraform("plan", "-input=false", "-no-color", cwd=tmp_path)
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "Invalid value for variable" in plan.stderr and "non-empty JSON array" in plan.stderr, plan.stderr


def test_the_module_accepts_a_good_pool(terraform: Path, tmp_path: Path) -> None:
    pool = '["5f3c8a1e-2b4d-4c6e-9f7a-1b2c3d4e5f60", "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"]'
    write_cases(tmp_path, {"good": {"namespace": "ameide-ws-alice", "client_ids_json": pool}})
    (tmp_path / "main.tf").write_text(
        module_block(tmp_path) + '\noutput "client_id" {\n  value = module.workspace_identity["good"].client_id\n}\n'
    )
    assert run_terraform("init", "-input=false", "-no-color", cwd=tmp_path).returncode == 0
    plan = run_terraform("plan", "-input=false", "-no-color", cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    index = shard_index("ameide-ws-alice", 2, "sha1")
    assert f'client_id = "{json.loads(pool)[index]}"' in plan.stdout


def test_the_examples_are_terraform_fmt_clean(terraform: Path, tmp_path: Path) -> None:
    done = run_terraform("fmt", "-check", "-recursive", "-diff", "-no-color", str(EXAMPLES), cwd=tmp_path)
    assert done.returncode == 0, f"run `terraform fmt -recursive examples/terraform`:\n{done.stdout}{done.stderr}"
    assert sorted(p.relative_to(EXAMPLES).as_posix() for p in EXAMPLES.rglob("*.tf")) == [
        "coder-template-example.tf",
        "workspace-identity/main.tf",
    ]
