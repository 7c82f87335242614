"""keyvault-sync's pure plan: one test per rule, then properties over random vault pairs (idempotence, no
delete without --prune, no unmanaged secret touched without --adopt or an equal value).

The property tests apply a plan to an in-memory model of the two vaults that follows the job's apply rules
(tests/e2e/test_keyvault_sync.py checks the real apply against the emulators)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.keyvault_sync.allowlist import Allowlist, Entry
from jobs.keyvault_sync.plan import (
    OWNER_TAG,
    OWNER_VALUE,
    SOURCE_VERSION_TAG,
    Adopt,
    Copy,
    Options,
    Prune,
    RecoverCopy,
    SyncState,
    UpdateProperties,
    decide_adoption,
    desired_props,
    patch_can_reach,
    plan,
)
from lib.clients.keyvault_types import Props, SecretMeta, current_version

NOW = datetime(2026, 6, 1, tzinfo=UTC)
V1, V2 = "a" * 32, "b" * 32
OURS = {OWNER_TAG: OWNER_VALUE}


def allow(*pairs: str | tuple[str, str]) -> Allowlist:
    entries = [Entry(p, p, i + 1) if isinstance(p, str) else Entry(p[0], p[1], i + 1) for i, p in enumerate(pairs)]
    return Allowlist("al.yaml", tuple(entries))


def seed(name: str, version: str | None = V1, **props: object) -> SecretMeta:
    return SecretMeta(name, Props(**props), version)  # type: ignore[arg-type]


def written(name: str, from_version: str = V1, **props: object) -> SecretMeta:
    """A target secret as this job writes it from a seed with the given properties."""
    desired = desired_props(Props(**props), from_version)  # type: ignore[arg-type]
    return SecretMeta(name, desired)


def state(source: list[SecretMeta], target: list[SecretMeta] = (), deleted: list[SecretMeta] = ()) -> SyncState:  # type: ignore[assignment]
    return SyncState(
        source={m.name.lower(): m for m in source},
        target={m.name.lower(): m for m in target},
        target_deleted={m.name.lower(): m for m in deleted},
    )


def kinds(p: object) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in p.actions]  # type: ignore[attr-defined]


def rules(p: object) -> list[tuple[str, str, str]]:
    return [(f.severity, f.rule, f.subject) for f in p.findings]  # type: ignore[attr-defined]


# ---- one rule each -----------------------------------------------------------------------------------------


def test_missing_targets_are_copied_in_allowlist_order() -> None:
    p = plan(state([seed("b"), seed("a")]), allow("b", ("a", "a-renamed")), Options(), NOW)
    assert kinds(p) == [("copy", "b"), ("copy", "a-renamed")]
    assert p.sections["entries"] == {"copy": 2}


def test_target_written_from_the_current_seed_version_needs_nothing() -> None:
    tags = {"team": "platform"}
    p = plan(state([seed("a", tags=tags)], [written("a", tags=tags)]), allow("a"), Options(), NOW)
    assert p.actions == () and p.findings == ()
    assert p.sections["entries"] == {"in-sync": 1}


def test_a_new_seed_version_is_copied_and_the_old_version_named() -> None:
    p = plan(state([seed("a", V2)], [written("a", V1)]), allow("a"), Options(), NOW)
    assert p.actions == (Copy("a", "a", "new seed version", V1),)


def test_unknown_seed_version_copies_but_remembers_what_the_target_carries() -> None:
    p = plan(state([seed("a", None)], [written("a", V1)]), allow("a"), Options(), NOW)
    assert p.actions == (Copy("a", "a", "seed version unknown", V1),)


def test_drifted_properties_are_patched_without_a_new_version() -> None:
    target = written("a", content_type="text/plain")
    target = replace(target, props=replace(target.props, enabled=False))
    p = plan(state([seed("a", content_type="application/json")], [target]), allow("a"), Options(), NOW)
    (action,) = p.actions
    assert isinstance(action, UpdateProperties)
    assert action.reason == "content type, enabled differ"
    assert action.props.enabled and action.props.content_type == "application/json"
    assert action.props.tags[SOURCE_VERSION_TAG] == V1


def test_an_expiry_the_seed_dropped_needs_a_new_version_since_a_patch_cannot_clear_it() -> None:
    p = plan(state([seed("a")], [written("a", expires_on=1_900_000_000)]), allow("a"), Options(), NOW)
    assert kinds(p) == [("copy", "a")]
    assert "needs a new version" in p.actions[0].describe()["reason"]


def test_missing_seed_is_an_error_and_the_others_proceed() -> None:
    p = plan(state([seed("b")]), allow("a", "b"), Options(), NOW)
    assert kinds(p) == [("copy", "b")]
    assert rules(p) == [("error", "source-missing", "a")]


def test_disabled_seed_is_skipped_with_a_warning() -> None:
    p = plan(state([seed("a", enabled=False)], [written("a", V2)]), allow("a"), Options(), NOW)
    assert p.actions == ()
    assert rules(p) == [("warning", "source-disabled", "a")]


def test_a_seed_with_too_many_tags_is_reported_not_truncated() -> None:
    fourteen = {f"t{i}": "x" for i in range(14)}
    p = plan(
        state([seed("a", tags=fourteen), seed("b", tags=dict(list(fourteen.items())[:13]))]),
        allow("a", "b"),
        Options(),
        NOW,
    )
    assert kinds(p) == [("copy", "b")]
    assert rules(p) == [("error", "too-many-tags", "a")]


def test_expired_seed_and_reserved_tags_are_warned_about_but_copied() -> None:
    source = seed("a", expires_on=int(NOW.timestamp()) - 1, tags={SOURCE_VERSION_TAG: "forged"})
    p = plan(state([source]), allow("a"), Options(), NOW)
    assert kinds(p) == [("copy", "a")]
    assert rules(p) == [("warning", "source-expired", "a"), ("warning", "reserved-tag", "a")]


def test_unmanaged_target_is_adopted_only_after_a_value_check() -> None:
    other = SecretMeta("a", Props(tags={"owner": "someone"}))
    assert plan(state([seed("a")], [other]), allow("a"), Options(), NOW).actions == (Adopt("a", "a", False),)
    assert plan(state([seed("a")], [other]), allow("a"), Options(adopt=True), NOW).actions == (Adopt("a", "a", True),)


def test_adoption_decision() -> None:
    assert decide_adoption(True, False) == "tag"
    assert decide_adoption(True, True) == "tag"
    assert decide_adoption(False, True) == "overwrite"
    assert decide_adoption(False, False) == "refuse"


def test_soft_deleted_target_is_recovered_when_ours_and_refused_when_not() -> None:
    ours = SecretMeta("a", Props(tags=OURS))
    theirs = SecretMeta("b", Props())
    s = state([seed("a"), seed("b")], deleted=[ours, theirs])
    p = plan(s, allow("a", "b"), Options(), NOW)
    assert p.actions == (RecoverCopy("a", "a", V1, "soft-deleted"),)
    assert rules(p) == [("error", "deleted-unmanaged", "b")]
    assert kinds(plan(s, allow("a", "b"), Options(adopt=True), NOW)) == [("recover-copy", "a"), ("recover-copy", "b")]


def test_prune_only_with_the_flag_and_only_our_secrets() -> None:
    s = state([seed("a")], [written("a"), written("gone"), SecretMeta("theirs", Props())])
    without = plan(s, allow("a"), Options(), NOW)
    assert without.actions == ()
    assert rules(without) == [("info", "orphan", "gone")]
    assert plan(s, allow("a"), Options(prune=True), NOW).actions == (Prune("gone"),)


def test_names_match_case_insensitively_like_key_vault() -> None:
    p = plan(
        state([seed("DB-Password")], [written("db-password")]), allow(("db-password", "DB-PASSWORD")), Options(), NOW
    )
    assert p.actions == ()


def test_patch_can_reach_only_when_nothing_must_be_cleared() -> None:
    assert patch_can_reach(Props(), Props(content_type="x", expires_on=1))
    assert not patch_can_reach(Props(content_type="x"), Props())
    assert not patch_can_reach(Props(not_before=5), Props())


def test_current_version_is_the_newest_and_unknown_on_a_tie() -> None:
    assert current_version([SecretMeta("a", Props(), V1, 10), SecretMeta("a", Props(), V2, 20)]) == V2
    assert current_version([SecretMeta("a", Props(), V1, 20), SecretMeta("a", Props(), V2, 20)]) is None
    assert current_version([]) is None


# ---- properties over random vault pairs ---------------------------------------------------------------------

NAMES = ["a", "b", "c", "d", "e"]
VALUES = ["red", "blue"]
HEX = st.sampled_from(["1" * 32, "2" * 32, "3" * 32])


@dataclass
class World:
    """Both vaults with their values: what the plan cannot see, and what apply would do."""

    source: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)  # real current version
    target: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)
    deleted: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # seeds whose versions list does not tell the current one

    def state(self) -> SyncState:
        return SyncState(
            {k: replace(m, version=None) if k in self.hidden else m for k, (m, _) in self.source.items()},
            {k: m for k, (m, _) in self.target.items()},
            {k: m for k, (m, _) in self.deleted.items()},
        )


props_strategy = st.builds(
    Props,
    content_type=st.sampled_from([None, "text/plain"]),
    tags=st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["x", "y"]), max_size=2),
    enabled=st.booleans(),
    expires_on=st.sampled_from([None, 1_800_000_000, 1_900_000_000]),
    not_before=st.sampled_from([None, 1_700_000_000]),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, Allowlist]:
    world = World()
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        world.source[name] = (SecretMeta(name, draw(props_strategy), draw(HEX)), draw(st.sampled_from(VALUES)))
        if draw(st.booleans()):
            world.hidden.add(name)
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        props = draw(props_strategy)
        if draw(st.booleans()):
            props = replace(props, tags={**props.tags, OWNER_TAG: OWNER_VALUE, SOURCE_VERSION_TAG: draw(HEX)})
        world.target[name] = (SecretMeta(name, props), draw(st.sampled_from(VALUES)))
    free = [n for n in NAMES if n not in world.target]
    for name in draw(st.lists(st.sampled_from(free), unique=True)) if free else []:
        tags = OURS if draw(st.booleans()) else {}
        world.deleted[name] = (SecretMeta(name, Props(tags=tags)), draw(st.sampled_from(VALUES)))
    targets = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
    entries = tuple(Entry(draw(st.sampled_from(NAMES)), t, i + 1) for i, t in enumerate(targets))
    return world, Allowlist("al.yaml", entries)


def _write(world: World, source: str, target: str) -> None:
    meta, value = world.source[source]
    world.deleted.pop(target, None)
    world.target[target] = (SecretMeta(target, desired_props(meta.props, meta.version)), value)


def simulate(world: World, actions: tuple[object, ...]) -> World:
    """The job's apply rules over the model (each branch mirrors one handler in jobs/keyvault_sync/job.py)."""
    for action in actions:
        if isinstance(action, Copy):
            if (
                action.current_source_version is None
                or world.source[action.source][0].version != action.current_source_version
            ):
                _write(world, action.source, action.target)
        elif isinstance(action, RecoverCopy):
            world.target[action.target] = world.deleted.pop(action.target)
            carried = world.target[action.target][0].props.tags.get(SOURCE_VERSION_TAG)
            if not (action.source_version and carried == action.source_version):
                _write(world, action.source, action.target)
        elif isinstance(action, Adopt):
            (seed_meta, seed_value), (meta, value) = world.source[action.source], world.target[action.target]
            decision = decide_adoption(seed_value == value, action.overwrite)
            desired = desired_props(seed_meta.props, seed_meta.version)
            if decision == "tag" and patch_can_reach(meta.props, desired):
                world.target[action.target] = (replace(meta, props=desired), value)
            elif decision != "refuse":
                _write(world, action.source, action.target)
        elif isinstance(action, UpdateProperties):
            meta, value = world.target[action.target]
            world.target[action.target] = (replace(meta, props=action.props), value)
        elif isinstance(action, Prune):
            world.deleted[action.target] = world.target.pop(action.target)
    return world


def refused(world: World, action: object) -> bool:
    return (
        isinstance(action, Adopt)
        and not action.overwrite
        and world.source[action.source][1] != world.target[action.target][1]
    )


def no_op(world: World, action: object) -> bool:
    """Planned, but writes nothing: a refused adoption, or a copy whose read shows the target is current."""
    if isinstance(action, Copy) and action.current_source_version is not None:
        return world.source[action.source][0].version == action.current_source_version
    return refused(world, action)


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans(), st.booleans())
def test_a_second_plan_after_applying_the_first_writes_nothing(
    case: tuple[World, Allowlist], adopt: bool, prune: bool
) -> None:
    world, allowlist = case
    options = Options(adopt=adopt, prune=prune)
    simulate(world, plan(world.state(), allowlist, options, NOW).actions)
    second = plan(world.state(), allowlist, options, NOW)
    assert [a for a in second.actions if not no_op(world, a)] == []
    snapshot = repr(world)
    assert repr(simulate(world, second.actions)) == snapshot


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans())
def test_nothing_is_deleted_without_prune_and_only_our_orphans_with_it(
    case: tuple[World, Allowlist], adopt: bool
) -> None:
    world, allowlist = case
    assert not any(isinstance(a, Prune) for a in plan(world.state(), allowlist, Options(adopt=adopt), NOW).actions)
    for action in plan(world.state(), allowlist, Options(adopt=adopt, prune=True), NOW).actions:
        if isinstance(action, Prune):
            meta = world.target[action.target][0]
            assert meta.props.tags.get(OWNER_TAG) == OWNER_VALUE
            assert action.target.lower() not in allowlist.targets


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans())
def test_an_unmanaged_secret_changes_only_with_adopt_or_an_equal_value(
    case: tuple[World, Allowlist], prune: bool
) -> None:
    world, allowlist = case
    before = {k: v for k, v in world.target.items() if v[0].props.tags.get(OWNER_TAG) != OWNER_VALUE}
    deleted_before = {k for k, v in world.deleted.items() if v[0].props.tags.get(OWNER_TAG) != OWNER_VALUE}
    seeds = {e.target: world.source.get(e.source) for e in allowlist.entries}
    p = plan(world.state(), allowlist, Options(adopt=False, prune=prune), NOW)
    for action in p.actions:
        if action.target in before:
            assert isinstance(action, Adopt) and not action.overwrite
        assert not (isinstance(action, RecoverCopy) and action.target in deleted_before)
    simulate(world, p.actions)
    for name, (meta, value) in before.items():
        after_meta, after_value = world.target[name]
        if (after_meta, after_value) != (meta, value):
            seed_entry = seeds.get(name)
            assert seed_entry is not None and seed_entry[1] == value and after_value == value
    assert deleted_before <= set(world.deleted)
