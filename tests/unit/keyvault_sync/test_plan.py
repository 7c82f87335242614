"""keyvault-sync's pure plan: one test per rule, then properties over random vault pairs (idempotence, no
delete without --prune, no unmanaged secret touched without --adopt or an equal value).

The property tests apply a plan to an in-memory model of the two vaults that follows the job's apply rules
(tests/e2e/test_keyvault_sync.py checks the real apply against the emulators), including the seed vault's
whole-second clock, so that changes made within the second of a copy are part of what is tried."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.keyvault_sync.allowlist import Allowlist, Entry
from jobs.keyvault_sync.detect import current_version, list_decides, marker, needs_versions
from jobs.keyvault_sync.plan import (
    OWNER_TAG,
    OWNER_VALUE,
    SOURCE_UPDATED_TAG,
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
from lib.clients.keyvault_types import Props, SecretMeta

NOW = datetime(2026, 6, 1, tzinfo=UTC)
V1, V2 = "a" * 32, "b" * 32
T0 = 1_780_000_000  # the seed's `updated` in the one-rule tests
SEEN = T0 + 60  # the seed vault's `Date` on its list: well past T0
OURS = {OWNER_TAG: OWNER_VALUE}


def allow(*pairs: str | tuple[str, str]) -> Allowlist:
    entries = [Entry(p, p, i + 1) if isinstance(p, str) else Entry(p[0], p[1], i + 1) for i, p in enumerate(pairs)]
    return Allowlist("al.yaml", tuple(entries))


def seed(name: str, updated: int = T0, **props: object) -> SecretMeta:
    """A seed secret as its secrets list shows it: no version id."""
    return SecretMeta(name, Props(**props), None, updated, updated)  # type: ignore[arg-type]


def written(name: str, from_version: str = V1, updated: int | None = T0, **props: object) -> SecretMeta:
    """A target secret as this job writes it from a seed with the given properties."""
    stamp = str(updated) if updated is not None else None
    return SecretMeta(name, desired_props(Props(**props), from_version, stamp))  # type: ignore[arg-type]


def state(
    source: list[SecretMeta],
    target: list[SecretMeta] = (),  # type: ignore[assignment]
    deleted: list[SecretMeta] = (),  # type: ignore[assignment]
    versions: dict[str, SecretMeta | None] | None = None,
) -> SyncState:
    return SyncState(
        source={m.name.lower(): m for m in source},
        target={m.name.lower(): m for m in target},
        target_deleted={m.name.lower(): m for m in deleted},
        source_versions=versions or {},
        source_time=SEEN,
    )


def version(name: str, v: str, updated: int = T0, **props: object) -> SecretMeta:
    """A seed secret's current version as its versions list shows it."""
    return SecretMeta(name, Props(**props), v, updated, updated)  # type: ignore[arg-type]


def kinds(p: object) -> list[tuple[str, str]]:
    return [(a.kind, a.target) for a in p.actions]  # type: ignore[attr-defined]


def rules(p: object) -> list[tuple[str, str, str]]:
    return [(f.severity, f.rule, f.subject) for f in p.findings]  # type: ignore[attr-defined]


# ---- one rule each -----------------------------------------------------------------------------------------


def test_missing_targets_are_copied_in_allowlist_order() -> None:
    p = plan(state([seed("b"), seed("a")]), allow("b", ("a", "a-renamed")), Options(), NOW)
    assert kinds(p) == [("copy", "b"), ("copy", "a-renamed")]
    assert p.sections["entries"] == {"copy": 2}


def test_target_written_from_the_current_seed_version_needs_nothing_and_no_versions_list() -> None:
    tags = {"team": "platform"}
    s = state([seed("a", tags=tags)], [written("a", tags=tags)])
    assert needs_versions(allow("a"), s.source, s.target) == []  # decided by the two lists alone
    p = plan(s, allow("a"), Options(), NOW)
    assert p.actions == () and p.findings == ()
    assert p.sections["entries"] == {"in-sync": 1}


def test_a_later_seed_updated_time_asks_for_that_secrets_versions_list_only() -> None:
    s = state([seed("a", updated=T0 + 5), seed("b")], [written("a"), written("b")])
    assert needs_versions(allow("a", "b"), s.source, s.target) == ["a"]


def test_a_new_seed_version_is_copied() -> None:
    s = state([seed("a", updated=T0 + 5)], [written("a", V1)], versions={"a": version("a", V2, T0 + 5)})
    assert plan(s, allow("a"), Options(), NOW).actions == (Copy("a", "a", "new seed version"),)


def test_the_same_version_with_a_later_updated_time_is_patched_with_the_new_marker() -> None:
    s = state([seed("a", updated=T0 + 5)], [written("a", V1)], versions={"a": version("a", V1, T0 + 5)})
    (action,) = plan(s, allow("a"), Options(), NOW).actions
    assert isinstance(action, UpdateProperties) and action.reason == "seed changed: tags differ"
    assert action.props.tags[SOURCE_UPDATED_TAG] == str(T0 + 5)


def test_unknown_seed_version_copies_but_remembers_what_the_target_carries() -> None:
    target = written("a", V1, updated=None)
    p = plan(state([seed("a")], [target], versions={"a": None}), allow("a"), Options(), NOW)
    assert p.actions == (Copy("a", "a", "seed version unknown", V1, target.props),)


def test_the_marker_is_recorded_only_when_the_seed_was_seen_after_that_second() -> None:
    assert marker(T0, T0 + 2) == str(T0)
    assert marker(T0, T0 + 1) is None and marker(T0, T0) is None  # one second of clock disagreement allowed
    assert marker(None, T0) is None and marker(T0, None) is None
    unsettled = SyncState(
        {"a": seed("a")}, {"a": written("a", updated=None)}, {}, {"a": version("a", V1)}, source_time=T0 + 1
    )
    assert plan(unsettled, allow("a"), Options(), NOW).actions == ()  # same version, no marker yet: nothing to do
    assert needs_versions(allow("a"), unsettled.source, unsettled.target) == ["a"]  # ...and asked again next run
    assert not list_decides(seed("a"), written("a", updated=None))


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
    thirteen = {f"t{i}": "x" for i in range(13)}  # with the job's 3 tags: 16 > Key Vault's 15
    p = plan(
        state([seed("a", tags=thirteen), seed("b", tags=dict(list(thirteen.items())[:12]))]),
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
    assert p.actions == (RecoverCopy("a", "a", False, "soft-deleted", None, ours.props),)
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


def test_a_soft_deleted_target_whose_tags_show_it_current_is_only_recovered() -> None:
    s = state([seed("a", tags={"t": "1"})], deleted=[written("a", tags={"t": "1"})])
    assert plan(s, allow("a"), Options(), NOW).actions[0] == RecoverCopy(
        "a", "a", True, "soft-deleted, current", V1, written("a", tags={"t": "1"}).props
    )
    changed = state([seed("a", tags={"t": "2"})], deleted=[written("a", tags={"t": "1"})])
    assert plan(changed, allow("a"), Options(), NOW).actions[0].current is False  # type: ignore[attr-defined]


def test_current_version_is_the_newest_and_unknown_on_a_tie() -> None:
    newest = SecretMeta("a", Props(), V2, 20)
    assert current_version([SecretMeta("a", Props(), V1, 10), newest]) == newest
    assert current_version([SecretMeta("a", Props(), V1, 20), SecretMeta("a", Props(), V2, 20)]) is None
    assert current_version([]) is None


# ---- properties over random vault pairs ---------------------------------------------------------------------

NAMES = ["a", "b", "c", "d", "e"]
VALUES = ["red", "blue"]
HEX = st.sampled_from(["1" * 32, "2" * 32, "3" * 32])


@dataclass
class World:
    """Both vaults with their values: what the plan cannot see, and what apply would do. `clock` is the seed
    vault's whole-second clock: every seed change is stamped with it, and a run sees it as the list's `Date`."""

    source: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)  # real current version
    target: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)
    deleted: dict[str, tuple[SecretMeta, str]] = field(default_factory=dict)
    hidden: set[str] = field(default_factory=set)  # seeds whose versions list does not tell the current one
    clock: int = T0
    serial: int = 0  # new version ids

    def state(self, allowlist: Allowlist) -> SyncState:
        listed = {k: replace(m, version=None) for k, (m, _) in self.source.items()}
        target = {k: m for k, (m, _) in self.target.items()}
        wanted = needs_versions(allowlist, listed, target)
        versions = {n.lower(): None if n.lower() in self.hidden else self.source[n.lower()][0] for n in wanted}
        deleted = {k: m for k, (m, _) in self.deleted.items()}
        return SyncState(listed, target, deleted, versions, self.clock)


props_strategy = st.builds(
    Props,
    content_type=st.sampled_from([None, "text/plain"]),
    tags=st.dictionaries(st.sampled_from(["team", "env"]), st.sampled_from(["x", "y"]), max_size=2),
    enabled=st.booleans(),
    expires_on=st.sampled_from([None, 1_800_000_000, 1_900_000_000]),
    not_before=st.sampled_from([None, 1_700_000_000]),
)
UPDATED = st.sampled_from([T0 - 100, T0 - 1, T0])


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, Allowlist]:
    world = World()
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        updated = draw(UPDATED)
        meta = SecretMeta(name, draw(props_strategy), draw(HEX), updated, updated)
        world.source[name] = (meta, draw(st.sampled_from(VALUES)))
        if draw(st.booleans()):
            world.hidden.add(name)
    for name in draw(st.lists(st.sampled_from(NAMES), unique=True)):
        props = draw(props_strategy)
        if draw(st.booleans()):
            mine = {OWNER_TAG: OWNER_VALUE, SOURCE_VERSION_TAG: draw(HEX)}
            if draw(st.booleans()):
                mine[SOURCE_UPDATED_TAG] = str(draw(UPDATED))
            props = replace(props, tags={**props.tags, **mine})
        world.target[name] = (SecretMeta(name, props), draw(st.sampled_from(VALUES)))
    free = [n for n in NAMES if n not in world.target]
    for name in draw(st.lists(st.sampled_from(free), unique=True)) if free else []:
        tags = OURS if draw(st.booleans()) else {}
        world.deleted[name] = (SecretMeta(name, Props(tags=tags)), draw(st.sampled_from(VALUES)))
    targets = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1))
    entries = tuple(Entry(draw(st.sampled_from(NAMES)), t, i + 1) for i, t in enumerate(targets))
    return world, Allowlist("al.yaml", entries)


def _desired(world: World, source: str) -> Props:
    meta = world.source[source][0]
    return desired_props(meta.props, meta.version, marker(meta.updated, world.clock))


def _write(world: World, source: str, target: str) -> None:
    world.deleted.pop(target, None)
    world.target[target] = (SecretMeta(target, _desired(world, source)), world.source[source][1])


def _refresh(world: World, source: str, target: str, carried: str | None, current: Props | None) -> None:
    """job._refresh: the read shows the version; the same one -> PATCH (or nothing), else a new version."""
    if carried is not None and current is not None and world.source[source][0].version == carried:
        desired = _desired(world, source)
        if desired == current:
            return
        if patch_can_reach(current, desired):
            meta, value = world.target[target]
            world.target[target] = (replace(meta, props=desired), value)
            return
    _write(world, source, target)


def simulate(world: World, actions: tuple[object, ...]) -> World:
    """The job's apply rules over the model (each branch mirrors one handler in jobs/keyvault_sync/apply.py)."""
    for action in actions:
        if isinstance(action, Copy):
            _refresh(world, action.source, action.target, action.current_source_version, action.target_props)
        elif isinstance(action, RecoverCopy):
            world.target[action.target] = world.deleted.pop(action.target)
            if not action.current:
                _refresh(world, action.source, action.target, action.carried_version, action.target_props)
        elif isinstance(action, Adopt):
            (_, seed_value), (meta, value) = world.source[action.source], world.target[action.target]
            decision = decide_adoption(seed_value == value, action.overwrite)
            desired = _desired(world, action.source)
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
    if (
        isinstance(action, Copy)
        and action.target_props is not None
        and world.source[action.source][0].version == action.current_source_version
    ):
        return _desired(world, action.source) == action.target_props
    return refused(world, action)


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans(), st.booleans())
def test_a_second_plan_after_applying_the_first_writes_nothing(
    case: tuple[World, Allowlist], adopt: bool, prune: bool
) -> None:
    world, allowlist = case
    options = Options(adopt=adopt, prune=prune)
    simulate(world, plan(world.state(allowlist), allowlist, options, NOW).actions)
    second = plan(world.state(allowlist), allowlist, options, NOW)
    assert [a for a in second.actions if not no_op(world, a)] == []
    snapshot = repr(world)
    assert repr(simulate(world, second.actions)) == snapshot


@settings(max_examples=200, deadline=None)
@given(worlds(), st.booleans())
def test_once_converged_and_a_second_later_a_run_needs_only_the_two_lists(
    case: tuple[World, Allowlist], adopt: bool
) -> None:
    """The no-op bound: after one run, and one more that records the markers a same-second copy could not,
    the lists decide every entry -- no versions list, no value read, no write."""
    world, allowlist = case
    options = Options(adopt=adopt)
    for _ in range(2):
        simulate(world, plan(world.state(allowlist), allowlist, options, NOW).actions)
        world.clock += 2
    s = world.state(allowlist)
    assert s.source_versions == {}
    assert [a for a in plan(s, allowlist, options, NOW).actions if not refused(world, a)] == []


# ---- sequences of seed changes converge --------------------------------------------------------------------

CHANGES = st.sampled_from(["new-version"] * 3 + ["properties", "disable", "enable", "delete", "recover", "rename"])


def change_seed(world: World, allowlist: Allowlist, change: str, name: str, draw: st.DrawFn) -> Allowlist:
    """One change an SRE makes in the seed vault (or the allowlist), stamped with the seed's clock."""
    key, now = name.lower(), world.clock
    if change == "recover" and key in world.deleted:
        world.source[key] = world.deleted.pop(key)  # same version, same `updated`: Key Vault restores it as was
    if key not in world.source:
        return allowlist
    meta, value = world.source[key]
    if change == "new-version":
        world.serial += 1
        fresh = f"{world.serial:032x}"
        props = replace(draw(props_strategy), enabled=True)  # a PUT without attributes creates an enabled version
        world.source[key] = (SecretMeta(meta.name, props, fresh, now, now), f"value-{fresh}")
    elif change in ("properties", "disable", "enable"):
        props = draw(props_strategy) if change == "properties" else replace(meta.props, enabled=change == "enable")
        world.source[key] = (replace(meta, props=props, updated=now), value)
    elif change == "delete":
        world.deleted[key] = world.source.pop(key)
    elif change == "rename":
        entries = tuple(
            replace(e, target=f"{e.target}-x") if e.source.lower() == key and len(e.target) < 8 else e
            for e in allowlist.entries
        )
        if len({e.target.lower() for e in entries}) == len(entries):
            return Allowlist(allowlist.path, entries)
    return allowlist


def converged(world: World, allowlist: Allowlist) -> bool:
    for entry in allowlist.entries:
        seed_entry = world.source.get(entry.source.lower())
        if seed_entry is None or not seed_entry[0].props.enabled:
            continue
        meta, value = seed_entry
        got = world.target.get(entry.target.lower())
        if got is None or got[1] != value:
            return False
        want = desired_props(meta.props, meta.version)
        tags = {k: v for k, v in got[0].props.tags.items() if k != SOURCE_UPDATED_TAG}
        if replace(got[0].props, tags=tags) != want:
            return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.data())
def test_any_sequence_of_seed_changes_converges_after_one_run_each(data: st.DataObject) -> None:
    """New versions, property-only updates, disable/enable, delete and recover, renames in the allowlist --
    with the clock standing still or moving on between changes and runs, so changes land in the same second
    as a copy -- and after each change one run makes the target equal to the seed."""
    names = data.draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
    world = World()
    for name in names:
        meta = SecretMeta(name, Props(), data.draw(HEX), T0 - 100, T0 - 100)
        world.source[name] = (meta, f"initial-{name}")
    allowlist = allow(*names)
    simulate(world, plan(world.state(allowlist), allowlist, Options(), NOW).actions)
    assert converged(world, allowlist)
    for _ in range(data.draw(st.integers(1, 8))):
        world.clock += data.draw(st.sampled_from([0, 1, 2, 5]))
        change, name = data.draw(CHANGES), data.draw(st.sampled_from(names))
        allowlist = change_seed(world, allowlist, change, name, data.draw)
        world.clock += data.draw(st.sampled_from([0, 1, 3]))
        simulate(world, plan(world.state(allowlist), allowlist, Options(prune=True), NOW).actions)
        assert converged(world, allowlist), (change, name)


@settings(max_examples=300, deadline=None)
@given(worlds(), st.booleans())
def test_nothing_is_deleted_without_prune_and_only_our_orphans_with_it(
    case: tuple[World, Allowlist], adopt: bool
) -> None:
    world, allowlist = case
    assert not any(
        isinstance(a, Prune) for a in plan(world.state(allowlist), allowlist, Options(adopt=adopt), NOW).actions
    )
    for action in plan(world.state(allowlist), allowlist, Options(adopt=adopt, prune=True), NOW).actions:
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
    p = plan(world.state(allowlist), allowlist, Options(adopt=False, prune=prune), NOW)
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
