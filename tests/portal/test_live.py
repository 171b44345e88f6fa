"""portal.live: hints are handed to the channel layer off the caller's path, in order."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from portal import live


def test_published_hints_reach_the_group_in_order():
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("tests.live", channel)
    try:
        for number in range(3):
            live.publish("tests.live", {"type": "tests.hint", "number": number})
        assert live.flush()

        async def receive_three():  # one event loop for the three (as a consumer has)
            return [(await layer.receive(channel))["number"] for _ in range(3)]

        assert async_to_sync(receive_three)() == [0, 1, 2]
    finally:
        async_to_sync(layer.group_discard)("tests.live", channel)


def test_a_failing_channel_layer_loses_the_hint_but_not_the_sender(monkeypatch, caplog):
    layer = get_channel_layer()

    async def broken(group, message):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(layer, "group_send", broken)
    live.publish("tests.live", {"type": "tests.hint"})
    assert live.flush()
    assert "live hint to tests.live not sent" in caplog.text
    monkeypatch.undo()

    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("tests.live", channel)
    live.publish("tests.live", {"type": "tests.hint", "number": 7})
    assert live.flush()
    assert async_to_sync(layer.receive)(channel)["number"] == 7
