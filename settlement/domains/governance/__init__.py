"""Consortium governance at the service: proposals (``proposals``) of the actions governance may
decide (``actions``), their approvals and executions, and the chain's governance events
(``events``, registered by ``wiring``). Trust model: docs/governance.md."""

from settlement.domains.governance.actions import ACTIONS, GOVERNANCE, GUARDIAN, SLOW_ACTIONS, Action
from settlement.domains.governance.proposals import (
    LIST_LIMIT_MAX,
    OPEN_STATUSES,
    GovernanceFacts,
    approvals_of,
    approve,
    approve_custodially,
    earliest_execution,
    execute,
    get_proposal,
    list_proposals,
    propose,
    read_facts,
    typed_data_of,
)

__all__ = ["ACTIONS", "GOVERNANCE", "GUARDIAN", "SLOW_ACTIONS", "Action", "LIST_LIMIT_MAX", "OPEN_STATUSES",
           "GovernanceFacts", "approvals_of", "approve", "approve_custodially", "earliest_execution", "execute",
           "get_proposal", "list_proposals", "propose", "read_facts", "typed_data_of"]
