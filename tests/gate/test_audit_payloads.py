"""The gate's hand-built artifact_declared payloads must be exactly canonical JSON."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from metaqore.core.canonical import canonical_json, content_hash
from metaqore.core.models import TaskSensitivity
from metaqore.core.records import ArtifactRecord
from metaqore.gate.replay import UNSET, _DeclaredEncoder, declared_payload

names = st.text(min_size=1, max_size=12)


@given(
    project=names,
    artifact_id=names,
    artifact_type=names,
    agent=names,
    data=st.dictionaries(names, st.integers(), max_size=2),
    version=st.integers(min_value=1, max_value=10**6),
    iteration=st.none() | st.integers(min_value=0, max_value=10**9),
    idempotent=st.booleans(),
    sensitivity=st.none() | st.sampled_from(["public", "internal", "sensitive", "critical"]),
    route=st.none() | st.tuples(names, st.sampled_from(["allowed", "vetoed"])),
)
def test_encoded_payload_equals_canonical_json(
    project,
    artifact_id,
    artifact_type,
    agent,
    data,
    version,
    iteration,
    idempotent,
    sensitivity,
    route,
):
    record = ArtifactRecord(
        project=project,
        id=artifact_id,
        artifact_type=artifact_type,
        agent=agent,
        content_hash=content_hash(data),
        declared_version=version,
        iteration=iteration,
    )
    record.version = version
    record.idempotent = idempotent
    encoder = _DeclaredEncoder()
    expected = canonical_json(declared_payload(record, sensitivity, route))
    assert encoder.encode(record, sensitivity, route) == expected
    # and again from the encoder's cache of repeated strings
    assert encoder.encode(record, sensitivity, route) == expected


record_fields = st.fixed_dictionaries(
    {
        "project": names,
        "artifact_id": names,
        "artifact_type": names,
        "agent": names,
        "version": st.integers(min_value=1, max_value=10**6),
        "iteration": st.none() | st.integers(min_value=0, max_value=10**9),
        "idempotent": st.booleans(),
        "rank": st.sampled_from([0, 1, 2, 3, UNSET]),
        "route": st.none() | st.tuples(names, st.sampled_from(["allowed", "vetoed"])),
    }
)


@given(fields=st.lists(record_fields, max_size=8))
def test_encode_all_equals_canonical_json_record_by_record(fields: list[dict[str, Any]]) -> None:
    records, ranks, routing = [], bytearray(), []
    for key, item in enumerate(fields):
        record = ArtifactRecord(
            project=item["project"],
            id=item["artifact_id"],
            artifact_type=item["artifact_type"],
            agent=item["agent"],
            content_hash=content_hash({"n": key}),
            iteration=item["iteration"],
        )
        record.key, record.version, record.idempotent = key, item["version"], item["idempotent"]
        records.append(record)
        ranks.append(item["rank"])
        routing.append(item["route"])
    levels = [level.value for level in TaskSensitivity]
    expected = [
        canonical_json(
            declared_payload(
                record,
                None if ranks[record.key] == UNSET else levels[ranks[record.key]],
                routing[record.key],
            )
        )
        for record in records
    ]
    assert list(_DeclaredEncoder().encode_all(records, ranks, routing)) == expected
