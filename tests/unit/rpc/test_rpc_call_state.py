"""The per-call state machine (sans-IO): every transition of every kind, against a model.

The model below restates the rules of ``micronetwork/rpc/call.py`` independently; a depth-first
walk over frame sequences checks that both machines (the client's and the server's view of one
call) accept exactly what the model allows, raising LocalProtocolError on the sending side and
RemoteProtocolError on the receiving side for everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from micronetwork.errors import LocalProtocolError, MessageTooLarge, RemoteProtocolError
from micronetwork.rpc import KINDS, Cancel, Data, Direction, End, Frame, Open, Role, RpcCall, Status
from micronetwork.rpc.frames import encode_frame

C, S = Role.CLIENT, Role.SERVER
NOW = 100.0


@dataclass(frozen=True)
class Step:
    sender: Role
    frame: Frame

    def __repr__(self) -> str:
        return f"{self.sender.value}:{self.frame!r}"


def alphabet(kind: str) -> list[Step]:
    return [
        Step(C, Open(1, "svc", "ep", kind, 5000)),  # type: ignore[arg-type]
        Step(C, Data("req")),
        Step(C, End()),
        Step(C, Cancel("bye")),
        Step(S, Data("resp")),
        Step(S, End()),
        Step(S, Status()),
        Step(S, Status("boom", "it broke")),
    ]


def model_allows(kind: str, history: list[Step], step: Step) -> bool:
    """The rules, restated from the protocol description rather than the table."""
    opened = any(isinstance(h.frame, Open) for h in history)
    over = any(isinstance(h.frame, Status | Cancel) for h in history)
    if over:
        return False
    f = step.frame
    if not opened:
        return step.sender is C and isinstance(f, Open)
    requests = sum(1 for h in history if h.sender is C and isinstance(h.frame, Data))
    responses = sum(1 for h in history if h.sender is S and isinstance(h.frame, Data))
    client_ended = any(h.sender is C and isinstance(h.frame, End) for h in history)
    server_ended = any(h.sender is S and isinstance(h.frame, End) for h in history)
    one_request = kind in ("unary", "server_stream")
    one_response = kind in ("unary", "client_stream")
    if step.sender is C:
        if isinstance(f, Open):
            return False
        if isinstance(f, Data):
            return not client_ended and not (one_request and requests >= 1)
        if isinstance(f, End):
            return not client_ended and (not one_request or requests == 1)
        return isinstance(f, Cancel)
    if isinstance(f, Data):
        return not server_ended and not (one_response and responses >= 1)
    if isinstance(f, End):
        return not server_ended
    assert isinstance(f, Status)
    return not f.ok or not one_response or responses == 1


def replay(kind: str, history: list[Step]) -> tuple[RpcCall, RpcCall]:
    client, server = RpcCall(C, deadline=NOW + 5), RpcCall(S)
    for step in history:
        deliver(client, server, step)
    return client, server


def deliver(client: RpcCall, server: RpcCall, step: Step) -> None:
    sender, receiver = (client, server) if step.sender is C else (server, client)
    data = sender.send(step.frame)
    receiver.receive_data(data)
    assert receiver.next_frame(NOW) == step.frame


def walk(kind: str, history: list[Step], depth: int) -> Iterator[tuple[list[Step], Step, bool]]:
    if depth == 0:
        return
    for step in alphabet(kind):
        allowed = model_allows(kind, history, step)
        yield history, step, allowed
        if allowed:
            yield from walk(kind, [*history, step], depth - 1)


@pytest.mark.parametrize("kind", KINDS)
def test_every_transition_matches_the_model(kind: str) -> None:
    checked = 0
    for history, step, allowed in walk(kind, [], 6):
        client, server = replay(kind, history)
        sender, receiver = (client, server) if step.sender is C else (server, client)
        if allowed:
            deliver(client, server, step)
        else:
            with pytest.raises(LocalProtocolError):
                sender.send(step.frame)
            # the same frame forced onto the wire is refused by the receiver, unless it
            # crossed the receiver's own Status / Cancel (then it is silently dropped)
            receiver.receive_data(encode_frame(step.frame, call_id=1))
            if receiver.over and receiver.ended_by_us:
                assert receiver.next_frame(NOW) is None
            else:
                with pytest.raises(RemoteProtocolError):
                    receiver.next_frame(NOW)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize(
    ("kind", "requests", "responses"),
    [("unary", 1, 1), ("server_stream", 1, 3), ("client_stream", 3, 1), ("bidi", 3, 3)],
)
def test_full_call_of_each_kind(kind: str, requests: int, responses: int) -> None:
    client, server = RpcCall(C, deadline=NOW + 2), RpcCall(S)
    steps = [Step(C, Open(7, "s", "e", kind, client.remaining_ms(NOW)))]  # type: ignore[arg-type]
    steps += [Step(C, Data(i)) for i in range(requests)] + [Step(C, End())]
    steps += [Step(S, Data(i)) for i in range(responses)] + [Step(S, Status())]
    for step in steps:
        deliver(client, server, step)
    for call in (client, server):
        assert call.over and not call.cancelled
        assert call.client_state is Direction.ENDED
        assert call.server_state is Direction.CLOSED
        assert call.status == Status()
        assert (call.requests, call.responses) == (requests, responses)
    assert server.deadline == pytest.approx(NOW + 2)
    assert client.receive_eof() and server.receive_eof()


def test_cancel_ends_the_call_and_crossing_frames_are_dropped() -> None:
    client, server = replay("bidi", [Step(C, Open(1, "s", "e", "bidi")), Step(C, Data(1))])
    cancel = client.send(Cancel("stop"))
    assert client.cancelled and client.over and client.ended_by_us
    # the server answered before it saw the Cancel: the client drops those frames
    client.receive_data(server.send(Data(2)) + server.send(End()))
    assert client.next_frame(NOW) is None
    server.receive_data(cancel)
    assert server.next_frame(NOW) == Cancel("stop")
    assert server.cancelled and server.over and server.cancel_reason == "stop"


def test_status_crossing_client_frames_is_dropped_by_the_server() -> None:
    client, server = replay("client_stream", [Step(C, Open(1, "s", "e", "client_stream"))])
    status = server.send(Status("overloaded", "busy"))
    server.receive_data(client.send(Data(1)) + client.send(End()))
    assert server.next_frame(NOW) is None
    client.receive_data(status)
    assert client.next_frame(NOW) == Status("overloaded", "busy")
    with pytest.raises(LocalProtocolError):
        client.send(Data(2))
    # anything after the peer's final frame is a protocol error
    client.receive_data(encode_frame(Data(3), call_id=1))
    with pytest.raises(RemoteProtocolError):
        client.next_frame(NOW)


def test_end_of_stream_is_clean_only_after_the_call() -> None:
    client, server = replay("unary", [Step(C, Open(1, "s", "e", "unary")), Step(C, Data(1)),
                                      Step(C, End())])
    assert not server.receive_eof()  # FIN before the Status: the client is gone
    assert not client.receive_eof()
    client2, server2 = replay("unary", [Step(C, Open(1, "s", "e", "unary"))])
    server2.receive_data(encode_frame(Data(1), call_id=1)[:2])
    with pytest.raises(RemoteProtocolError):
        server2.receive_eof()  # ended inside a frame


def test_deadlines_are_relative_and_passed_in() -> None:
    client = RpcCall(C, deadline=NOW + 1.5)
    assert client.remaining(NOW) == 1.5 and client.remaining_ms(NOW) == 1500
    assert not client.expired(NOW) and client.expired(NOW + 1.5)
    open_frame = Open(1, "s", "e", "unary", client.remaining_ms(NOW + 0.5))
    server = RpcCall(S)
    server.receive_data(client.send(open_frame))
    assert server.next_frame(500.0) == open_frame
    assert server.deadline == pytest.approx(501.0)  # the server's own clock
    no_deadline = RpcCall(S)
    no_deadline.receive_data(encode_frame(Open(1, "s", "e", "unary")))
    no_deadline.next_frame(NOW)
    assert no_deadline.deadline is None and no_deadline.remaining_ms(NOW) is None


def test_a_refused_send_leaves_the_state_unchanged() -> None:
    client = RpcCall(C, max_message_size=1024)
    client.send(Open(1, "s", "e", "unary"))
    with pytest.raises(MessageTooLarge):
        client.send(Data(b"x" * 2000))
    assert client.requests == 0
    client.send(Data(b"x"))
    client.send(End())
    assert client.client_state is Direction.ENDED


def test_oversized_frame_from_the_peer() -> None:
    server = RpcCall(S, max_message_size=1024)
    server.receive_data(encode_frame(Open(1, "s", "e", "bidi")))
    server.next_frame(NOW)
    server.receive_data(encode_frame(Data(b"x" * 5000), 10_000, call_id=1))
    with pytest.raises(MessageTooLarge):
        server.next_frame(NOW)
