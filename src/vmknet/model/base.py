"""Common configuration of every model object: strict, camelCase in files."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class VmknetModel(BaseModel):
    """Pure data, no I/O: constructing a model never touches the system."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_assignment=False,
        use_enum_values=False,
    )
