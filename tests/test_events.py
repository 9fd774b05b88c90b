"""Our event vocabulary against Kurrent's canonical agent schema package."""

import dataclasses

import kurrent_agent_schema as kas

from kapacitor import events


def test_canonical_type_names_exist_in_the_schema():
    for cls in events.CANONICAL_TYPES:
        assert cls.__name__ in kas.EVENT_TYPE_BY_NAME


def test_canonical_fields_are_schema_fields():
    for cls in events.CANONICAL_TYPES:
        schema_fields = {f.name for f in kas.EVENT_TYPE_BY_NAME[cls.__name__].DESCRIPTOR.fields}
        ours = {f.name for f in dataclasses.fields(cls)}
        assert ours <= schema_fields, f"{cls.__name__}: {ours - schema_fields} not in the schema"


def test_our_own_types_do_not_shadow_schema_types():
    for cls in events.KAPACITOR_TYPES:
        assert cls.__name__ not in kas.EVENT_TYPE_BY_NAME


def test_stream_names_and_metadata_keys_match():
    assert events.agent_session_stream("s") == kas.agent_session_stream("s")
    assert events.agent_subsession_stream("s", "a") == kas.agent_subsession_stream("s", "a")
    assert events.agent_memory_stream("app", "u") == kas.agent_memory_stream("app", "u")
    assert events.USAGE_METADATA_KEY == kas.USAGE_METADATA_KEY
    assert events.SCHEMA_VERSION == kas.SCHEMA_VERSION


def test_every_event_type_documents_itself():
    for cls in events.EVENT_TYPES.values():
        assert cls.__doc__ and cls.__doc__.strip()


def test_ids_are_deterministic():
    assert events.event_id("a", 1) == events.event_id("a", 1) != events.event_id("a", 2)


def test_ids_are_uuid5_of_the_joined_parts():
    import uuid

    for parts in [("a", 1), ("claude-code", "s", "", "uuid:x", 0), ("ünï", "\ud800")]:
        name = "/".join(map(str, parts))
        if "\ud800" in name:
            continue  # uuid5 cannot encode a lone surrogate; event_id can
        assert events.event_id(*parts) == str(uuid.uuid5(events.EVENT_ID_NAMESPACE, name))
    assert uuid.UUID(events.event_id("x", "\ud800")).version == 5
