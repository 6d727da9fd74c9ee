"""The container config model: parse, default, validate, serialise. Pure: no I/O.

Entry points, by input form:

- Ditto (camelCase, ``ocirt.config.ditto``): `parse_create`, `parse_create_with_config`,
  then `new_definition` once the manager has chosen the id; `parse_update` and
  `apply_update`; `to_ditto_config` for a feature's ``status.config``.
- Kanto's persisted snake_case form (``ocirt.config.kanto``): `parse_persisted`
  (descriptors, ``kanto-cm create -f`` files, stored containers) and `to_persisted`.
- `fill_defaults` and `validate` (Kanto's FillDefaults and ValidateContainer),
  `check_unique_name` (docs/kanto-compatibility.md decision 8) and `parse_size`.
"""

from ocirt.config.defaults import fill_defaults
from ocirt.config.ditto import (
    ContainerUpdate,
    CreateRequest,
    apply_update,
    new_definition,
    parse_container_config,
    parse_create,
    parse_create_with_config,
    parse_update,
    to_ditto_config,
)
from ocirt.config.kanto import (
    PersistedContainer,
    parse_persisted,
    parse_persisted_json,
    to_persisted,
)
from ocirt.config.reader import load_json
from ocirt.config.sizes import parse_size
from ocirt.config.validation import check_name, check_unique_name, validate

__all__ = [
    "ContainerUpdate",
    "CreateRequest",
    "PersistedContainer",
    "apply_update",
    "check_name",
    "check_unique_name",
    "fill_defaults",
    "load_json",
    "new_definition",
    "parse_container_config",
    "parse_create",
    "parse_create_with_config",
    "parse_persisted",
    "parse_persisted_json",
    "parse_size",
    "parse_update",
    "to_ditto_config",
    "to_persisted",
    "validate",
]
