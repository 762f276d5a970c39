"""The codec's hand-built message frames are the bytes msgspec would write."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from hewitt import Actor, ActorSystem
from hewitt._runtime._codec import MessageFrame, _wire_ref
from hewitt._runtime._marks import ENVELOPE


@dataclass
class Note:
    text: str
    n: int


class Quiet(Actor[object]):
    def receive(self, message: object) -> None:
        pass


async def test_a_frame_is_what_msgspec_encodes(actor_system: ActorSystem) -> None:
    codec = actor_system.codec
    codec.register(Note)
    target = actor_system.spawn(Quiet, name="target")
    sender = actor_system.spawn(Quiet, name="sender")
    cases = ((Note("hi", 3), None), (Note("again", 4), sender), (7, sender), ("s", None))
    for message, from_ in cases:
        item = message if from_ is None else (message, from_, ENVELOPE)
        for _ in range(2):  # the second time from the cache
            data = codec.encode_message(target, item)
            expected = msgspec.msgpack.encode(
                MessageFrame(
                    _wire_ref(target),
                    _wire_ref(from_) if from_ is not None else None,
                    codec._by_type[type(message)],
                    msgspec.Raw(msgspec.msgpack.encode(message)),
                )
            )
            assert data == expected
            recipient, decoded_sender, decoded = codec.decode_message(data)
            assert (recipient, decoded_sender, decoded) == (target, from_, message)
