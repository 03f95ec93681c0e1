"""Rebuild behind an alias: write into ``<alias>_v<N>``, check its count, then move the alias in
one atomic ``update_collection_aliases`` call; readers of the alias see the old or the new
version, never a partial one. A rebuild that crashed left an unaliased newest version behind:
the next run reuses it (ids are deterministic, so nothing duplicates) instead of starting over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from qdrant_client import models

from qdrant_beam.connectors.qdrant_errors import translate_errors
from qdrant_beam.io.clock import Clock, SystemClock
from qdrant_beam.io.errors import SpecError

__all__ = ["AliasPlan", "finish_rebuild", "plan_rebuild", "versions_json"]


class AliasPlan:
    """Which versioned collection a rebuild writes, and what the alias points at now."""

    def __init__(self, alias: str, live: str | None, target: str, resumed: bool) -> None:
        self.alias = alias
        self.live = live
        self.target = target
        self.resumed = resumed

    def __repr__(self) -> str:
        return (
            f"AliasPlan(alias={self.alias!r}, live={self.live!r}, target={self.target!r}, "
            f"resumed={self.resumed})"
        )


def _versions(client: Any, alias: str) -> dict[int, str]:
    pattern = re.compile(rf"^{re.escape(alias)}_v(\d+)$")
    names = [c.name for c in client.get_collections().collections]
    return {int(m.group(1)): n for n in names if (m := pattern.match(n))}


def _alias_target(client: Any, alias: str) -> str | None:
    for entry in client.get_aliases().aliases:
        if entry.alias_name == alias:
            return str(entry.collection_name)
    return None


def plan_rebuild(client: Any, alias: str) -> AliasPlan:
    """The next version to build; an unaliased newest version left by a crash is reused."""
    with translate_errors():
        names = {c.name for c in client.get_collections().collections}
        if alias in names:
            raise SpecError(
                f"{alias!r} is a collection, but a rebuild serves {alias!r} as an alias over "
                f"versioned collections ({alias}_v1, {alias}_v2, ...). Rebuild under another "
                f"name, or move the data: create the alias once with `--collection` naming a "
                f"new alias, then point readers at it"
            )
        versions = _versions(client, alias)
        live = _alias_target(client, alias)
    if versions:
        newest = max(versions)
        if versions[newest] != live:
            return AliasPlan(alias, live, versions[newest], resumed=True)
        return AliasPlan(alias, live, f"{alias}_v{newest + 1}", resumed=False)
    return AliasPlan(alias, live, f"{alias}_v1", resumed=False)


def finish_rebuild(
    client: Any,
    plan: AliasPlan,
    *,
    expected_points: int,
    keep_versions: int,
    grace_s: float,
    clock: Clock | None = None,
    log: Callable[[str], None] = print,
) -> list[str]:
    """Check the new version's count, switch the alias atomically, drop old versions.

    Returns the collections dropped. Raises ``SpecError`` (and leaves the alias alone) when
    the new version holds fewer points than the run wrote.
    """
    clock = clock or SystemClock()
    with translate_errors():
        count = client.count(plan.target, exact=True).count
    if count < expected_points:
        raise SpecError(
            f"{plan.target} holds {count} points but {expected_points} were written; the alias "
            f"{plan.alias!r} still points at {plan.live!r}. Run the rebuild again to finish it"
        )
    actions: list[Any] = []
    if plan.live is not None:
        actions.append(
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=plan.alias))
        )
    actions.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=plan.target, alias_name=plan.alias)
        )
    )
    with translate_errors():
        client.update_collection_aliases(change_aliases_operations=actions)
    log(f"alias {plan.alias!r} -> {plan.target} ({count:,} points; was {plan.live})")
    if grace_s > 0:
        clock.sleep(grace_s)
    with translate_errors():
        versions = _versions(client, plan.alias)
    live_version = next(v for v, name in versions.items() if name == plan.target)
    old = sorted((v for v in versions if v < live_version), reverse=True)
    dropped = []
    for version in old[keep_versions:]:
        with translate_errors():
            client.delete_collection(versions[version])
        dropped.append(versions[version])
    if dropped:
        log(f"dropped old versions: {', '.join(dropped)}")
    return dropped


def versions_json(client: Any, alias: str) -> str:
    """For logs: the versions and the alias target."""
    return json.dumps({"versions": _versions(client, alias), "live": _alias_target(client, alias)})
