"""The ClusterRoles and ClusterRoleBindings fic-reconcile reads and writes, without the Kubernetes client: the
plan works on these, and importing them costs no `kubernetes` import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Rule:
    verbs: tuple[str, ...]
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]


@dataclass(frozen=True, order=True)
class Subject:
    kind: str  # ServiceAccount, User or Group
    name: str
    namespace: str = ""  # ServiceAccounts only


@dataclass(frozen=True)
class ObservedRole:
    name: str
    labels: tuple[tuple[str, str], ...]  # sorted (key, value) pairs
    rules: tuple[Rule, ...]
    version: str  # metadata.resourceVersion: a replace is conditional on it


@dataclass(frozen=True)
class ObservedRoleBinding:
    name: str
    labels: tuple[tuple[str, str], ...]
    role_kind: str  # roleRef.kind
    role: str  # roleRef.name
    subjects: tuple[Subject, ...]
    version: str


def carries(labels: tuple[tuple[str, str], ...], wanted: dict[str, str]) -> bool:
    have = dict(labels)
    return all(have.get(key) == value for key, value in wanted.items())
