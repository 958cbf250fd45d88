"""The events tests run in the callbacks world (settlements, providers, the app over real HTTP
on a real anvil, real SQLite and PostgreSQL)."""

from tests.callbacks.conftest import CWorld, cworld, sworld  # noqa: F401  (fixtures)
