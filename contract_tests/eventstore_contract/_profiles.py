"""Hypothesis profiles of the suite: ``quick``, ``ci`` and ``thorough``.

They are registered under prefixed names and applied only to the suite's own
property-based tests (through :func:`suite_settings`), never loaded globally, so a
backend's other hypothesis tests keep the settings their project chose.
"""

from __future__ import annotations

__all__ = ["DEFAULT_PROFILE", "ENV_VAR", "PROFILES", "resolve_profile", "suite_settings"]

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from hypothesis import HealthCheck, Phase, settings

#: Environment variable that picks a profile when ``--eventstore-profile`` is absent.
ENV_VAR: Final = "EVENTSTORE_HYPOTHESIS_PROFILE"
#: Profile used on a developer machine (no ``CI`` environment variable).
DEFAULT_PROFILE: Final = "quick"

# Examples are whole store round trips, some through a network; hypothesis' speed
# health checks and deadlines would flag the backend's latency, not a bug.
_SLOW_OK: Final = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much)

#: The profiles by their public name.
PROFILES: Final[Mapping[str, settings]] = MappingProxyType(
    {
        # No shrinking: a developer wants a fast verdict; ci and thorough shrink
        # failures to a minimal sequence of steps.
        "quick": settings(
            max_examples=10,
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=_SLOW_OK,
            database=None,
        ),
        "ci": settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            derandomize=True,
            suppress_health_check=_SLOW_OK,
            database=None,
            print_blob=True,
        ),
        "thorough": settings(
            max_examples=400,
            stateful_step_count=60,
            deadline=None,
            suppress_health_check=_SLOW_OK,
        ),
    }
)

for _name, _settings in PROFILES.items():
    settings.register_profile(f"eventstore-{_name}", _settings)


def resolve_profile(option: str | None) -> str:
    """The profile name to use: the option, else the env variable, else by ``CI``."""
    name = option or os.environ.get(ENV_VAR) or ("ci" if os.environ.get("CI") else DEFAULT_PROFILE)
    if name not in PROFILES:
        raise ValueError(
            f"unknown eventstore hypothesis profile {name!r}; choose one of {', '.join(PROFILES)}"
        )
    return name


def suite_settings(name: str) -> settings:
    """The hypothesis settings of profile ``name``."""
    return PROFILES[name]
