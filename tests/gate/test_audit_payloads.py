"""The gate's hand-built artifact_declared payloads must be exactly canonical JSON."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metaqore.core.canonical import canonical_json, content_hash
from metaqore.core.records import ArtifactRecord
from metaqore.gate.replay import _DeclaredEncoder, declared_payload

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
