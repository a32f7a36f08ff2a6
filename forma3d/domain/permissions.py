"""Permissions (`resource.action`) and the built-in roles that grant them.

Every /api/v1 route declares the one permission it needs next to itself; the catalog below
names the ones the product knows, and a route may declare another well-formed one (a new
resource): the built-in roles are rules over names, so a new `x.read` is visible to every role
and a new write is the owner's and admin's until a rule says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

PERMISSION = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")

PERMISSIONS: dict[str, str] = {
    "tenant.read": "see the tenant itself",
    "tenant.configure": "change the tenant's settings",
    "tenant.manage": "change the tenant's ownership and delete it",
    "events.read": "read the event log and the live stream",
    "orders.read": "list and read orders",
    "orders.cancel": "cancel an order",
    "orders.hold": "hold an order with a reason",
    "orders.release": "release a held order",
    "orders.create": "enter an order by hand (a sale outside Shopify)",
    "print_jobs.read": "list and read print jobs",
    "print_jobs.retry": "requeue a failed or cancelled job",
    "print_jobs.cancel": "cancel a job",
    "print_jobs.pause": "pause and resume a job",
    "print_jobs.reorder": "change the queue's order",
    "print_jobs.clear": "hide finished jobs",
    "print_jobs.force_status": "set a job's status regardless of its state (admin repair)",
    "printers.read": "list and read printers",
    "printers.write": "register and change printers",
    "printers.operate": "confirm a clear bed, enable and disable printers",
    "mappings.read": "read product mappings",
    "mappings.write": "create, change and delete product mappings",
    "files.read": "read and download print files",
    "files.write": "upload print files",
    "shipments.read": "read shipments and labels",
    "shipments.retry": "retry shipping an order",
    "stock.read": "read stock levels, ledger, batches and settings",
    "stock.write": "change a product's minimum, maximum and replenishment",
    "stock.adjust": "correct counts and scrap units",
    "stock.print": "print to stock and cancel stock batches",
    "stock.settings": "change the Stock Management settings",
    "gridflock.read": "read GridFlock jobs and plates",
    "gridflock.preview": "plan a GridFlock drawer",
    "gridflock.retry": "run a failed GridFlock job again",
    "gridflock.quote": "price a drawer (a storefront's publishable key holds only this)",
    "gridflock.write": "create, change and delete GridFlock presets",
    "webhooks.read": "read dead-lettered webhook deliveries",
    "webhooks.retry": "retry a dead-lettered webhook delivery",
    "webhook_subscriptions.read": "list outgoing webhook subscriptions and their deliveries",
    "webhook_subscriptions.write": "create, change, delete and redeliver outgoing webhooks",
    "dead_letters.read": "list messages the product refused for good",
    "dead_letters.requeue": "deliver a dead-lettered message again",
    "integrations.read": "read the tenant's integration settings",
    "integrations.write": "change the tenant's integrations",
    "users.read": "list users",
    "users.manage": "invite, change and remove users; issue password resets",
    "roles.read": "list roles",
    "roles.manage": "create, change and delete custom roles",
    "api_keys.read": "list API keys",
    "api_keys.manage": "create, rotate and revoke API keys",
    "audit.read": "read the audit trail",
}

SELF = "session.self"
"""What any authenticated caller may do to itself (see who it is, sign out): held implicitly."""
PLATFORM = "tenants.create"
"""The platform administrator's: no tenant role can hold it."""
PLATFORM_ONLY = frozenset({PLATFORM})

SECURITY_RESOURCES = frozenset({"users", "roles", "api_keys", "audit", "integrations",
                                "webhook_subscriptions", "tenants"})
"""Resources whose reads are themselves sensitive: not for operators, catalogue managers or
viewers."""
OWNER_ONLY = frozenset({"tenant.manage"})

OPERATOR_WRITES = frozenset({
    "orders.cancel", "orders.hold", "orders.release", "orders.create", "print_jobs.retry",
    "print_jobs.cancel", "print_jobs.pause",
    "print_jobs.reorder", "print_jobs.clear", "printers.operate", "shipments.retry",
    "stock.adjust", "stock.print", "gridflock.retry", "gridflock.quote", "webhooks.retry",
    "dead_letters.requeue",
    "files.write",
})
CATALOGUE_WRITES = frozenset({
    "mappings.write", "files.write", "stock.write", "gridflock.preview", "gridflock.retry",
    "gridflock.quote", "gridflock.write",
})


def is_permission(name: str) -> bool:
    return bool(PERMISSION.match(name))


def resource_of(permission: str) -> str:
    return permission.split(".", 1)[0]


def _plain_read(permission: str) -> bool:
    return permission.endswith(".read") and resource_of(permission) not in SECURITY_RESOURCES


@dataclass(frozen=True)
class BuiltinRole:
    name: str
    description: str
    grants: Callable[[str], bool]


BUILTIN_ROLES: dict[str, BuiltinRole] = {role.name: role for role in (
    BuiltinRole("owner", "everything in the tenant", lambda p: p not in PLATFORM_ONLY),
    BuiltinRole("admin", "everything but the tenant's ownership",
                lambda p: p not in PLATFORM_ONLY and p not in OWNER_ONLY),
    BuiltinRole("operator", "runs the farm: queue, printers, shipping, stock counts",
                lambda p: _plain_read(p) or p in OPERATOR_WRITES),
    BuiltinRole("catalogue_manager", "keeps products, print files and stock plans",
                lambda p: _plain_read(p) or p in CATALOGUE_WRITES),
    BuiltinRole("viewer", "reads everything but security settings",
                lambda p: _plain_read(p)),
)}
OWNER = "owner"


def known_permissions(declared: Iterable[str] = ()) -> frozenset[str]:
    """The catalog plus what routes declare (tenant permissions only)."""
    return frozenset(PERMISSIONS) | frozenset(p for p in declared if p not in PLATFORM_ONLY
                                              and p != SELF)


def builtin_permissions(role: str, known: Iterable[str]) -> frozenset[str]:
    """What built-in `role` grants of `known` (KeyError for a name that is not built in)."""
    rule = BUILTIN_ROLES[role].grants
    return frozenset(p for p in known if rule(p))


def unknown(permissions: Iterable[str], known: frozenset[str]) -> list[str]:
    """Those of `permissions` that are not tenant permissions, in order."""
    return [p for p in permissions if p not in known]


def escalation(wanted: Iterable[str], held: frozenset[str]) -> list[str]:
    """Those of `wanted` the granter does not hold itself: nobody grants more than they have."""
    return sorted(set(wanted) - held)
