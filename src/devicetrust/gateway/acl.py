"""The topic layout of the device endpoint and who may use which topic (pure, no I/O).

    {prefix}/{physical-id}/diagnostics   publish (QoS 0/1), filed under the logical identity
    {prefix}/{physical-id}/telemetry     publish (QoS 0/1), filed under the physical unit
    {prefix}/{physical-id}/feedback      subscribe (QoS 0/1), the backend's messages

A device may use only its own three topics, named exactly: the physical id is the one its
credential proved, in canonical form. Every comparison is an exact string match, so no
wildcard (`+`, `#`), `$SYS/...`, `$share/...` or another device's topic can ever pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from devicetrust.domain.ids import PhysicalId

from .sink import MessageKind

DEFAULT_PREFIX = "devices"
_KINDS = {kind.value: kind for kind in MessageKind}  # the leaf a device may publish to


@dataclass(frozen=True, slots=True)
class TopicLayout:
    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        levels = self.prefix.split("/")
        if (not self.prefix or self.prefix.startswith("$") or "" in levels
                or any(c in self.prefix for c in "+#\0")):
            raise ValueError(f"invalid topic prefix {self.prefix!r}")

    def topic(self, physical_id: PhysicalId, leaf: str) -> str:
        return f"{self.prefix}/{physical_id}/{leaf}"

    def feedback(self, physical_id: PhysicalId) -> str:
        return self.topic(physical_id, "feedback")

    def publish_kind(self, physical_id: PhysicalId, topic: str) -> MessageKind | None:
        """The kind of message a PUBLISH to `topic` is, or None if this device may not:
        `topic` is exactly `{prefix}/{physical_id}/{kind}` (runs for every PUBLISH)."""
        own = f"{self.prefix}/{physical_id}/"
        if not topic.startswith(own):
            return None
        return _KINDS.get(topic[len(own) :])

    def may_subscribe(self, physical_id: PhysicalId, topic_filter: str) -> bool:
        return topic_filter == self.feedback(physical_id)
