#!/usr/bin/env python3
"""An MQTT 5 request/response round trip (MQTT 5 section 4.10) between two paho-mqtt
clients through a pathmq broker on 127.0.0.1:<port> (the one argument).

The responder subscribes to `svc/requests` with Subscription Identifier 42; the
requester subscribes to its reply topic with identifier 7, then publishes a request with
a Response Topic, Correlation Data, a Content Type and User Properties. The responder
checks them and answers on the Response Topic with the Correlation Data; the requester
checks the answer.

Driven by tests/tests/mqtt5_features/clients.rs. Prints one line
`PATHMQ_RESULT <json>` and exits 0 only on success. Needs paho-mqtt 1.6 (Debian
`python3-paho-mqtt`). Every wait is bounded by STEP_TIMEOUT.
"""

import json
import queue
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

STEP_TIMEOUT = 5.0
HOST = "127.0.0.1"
REQUESTS = "svc/requests"
REPLIES = "svc/replies/requester-1"
CORRELATION = bytes([0x00, 0x01, 0xFF, 0x7F, 0x80])
# Not in alphabetical order, and a repeated name: both must survive [MQTT-3.3.2-18].
USER_PROPERTIES = [("trace", "t-1"), ("kind", "ping"), ("trace", "t-2")]

stage = "start"


def fail(error):
    print("PATHMQ_RESULT " + json.dumps({"ok": False, "stage": stage, "error": str(error)}))
    sys.stdout.flush()
    sys.exit(1)


def check(condition, what):
    if not condition:
        fail(what)


def wait(events, what):
    try:
        return events.get(timeout=STEP_TIMEOUT)
    except queue.Empty:
        fail("timed out waiting for " + what)


def client(client_id, port):
    """A connected MQTT 5 client whose callbacks feed a queue of (kind, value)."""
    events = queue.Queue()
    c = mqtt.Client(client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_connect = lambda cl, ud, flags, rc, props: events.put(("connack", rc))
    c.on_subscribe = lambda cl, ud, mid, codes, props: events.put(("suback", codes))
    c.on_message = lambda cl, ud, msg: events.put(("message", msg))
    c.connect(HOST, port, keepalive=30, clean_start=True)
    c.loop_start()
    kind, rc = wait(events, client_id + "'s CONNACK")
    check(kind == "connack" and rc == 0, "%s: CONNACK %s" % (client_id, rc))
    return c, events


def subscribe(c, events, topic, subscription_id):
    props = Properties(PacketTypes.SUBSCRIBE)
    props.SubscriptionIdentifier = subscription_id
    c.subscribe(topic, options=SubscribeOptions(qos=1), properties=props)
    kind, codes = wait(events, "SUBACK for " + topic)
    check(kind == "suback" and [int(c.value) for c in codes] == [1], "SUBACK %s" % codes)


def message(events, what):
    kind, msg = wait(events, what)
    check(kind == "message", "expected a message, got " + kind)
    return msg


def described(msg):
    p = msg.properties
    return {
        "topic": msg.topic,
        "payload": msg.payload.decode("utf-8", "replace"),
        "response_topic": getattr(p, "ResponseTopic", None),
        "correlation_data": list(getattr(p, "CorrelationData", b"")),
        "content_type": getattr(p, "ContentType", None),
        "user_properties": [list(kv) for kv in getattr(p, "UserProperty", [])],
        "subscription_ids": getattr(p, "SubscriptionIdentifier", []),
    }


def main():
    global stage
    port = int(sys.argv[1])

    stage = "connect"
    responder, responder_events = client("responder-1", port)
    requester, requester_events = client("requester-1", port)

    stage = "subscribe"
    subscribe(responder, responder_events, REQUESTS, 42)
    subscribe(requester, requester_events, REPLIES, 7)

    stage = "request"
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = REPLIES
    props.CorrelationData = CORRELATION
    props.ContentType = "application/x-ping"
    for pair in USER_PROPERTIES:
        props.UserProperty = pair
    requester.publish(REQUESTS, b"ping", qos=1, properties=props).wait_for_publish(STEP_TIMEOUT)
    request = described(message(responder_events, "the request"))
    check(request["payload"] == "ping", request)
    check(request["response_topic"] == REPLIES, ("Response Topic [MQTT-3.3.2-15]", request))
    check(request["correlation_data"] == list(CORRELATION), ("Correlation Data [MQTT-3.3.2-16]", request))
    check(request["content_type"] == "application/x-ping", ("Content Type [MQTT-3.3.2-20]", request))
    check(
        request["user_properties"] == [list(kv) for kv in USER_PROPERTIES],
        ("User Properties, in order, repeats kept [MQTT-3.3.2-17/18]", request),
    )
    check(request["subscription_ids"] == [42], ("Subscription Identifier [MQTT-3.3.4-3]", request))

    stage = "response"
    reply = Properties(PacketTypes.PUBLISH)
    reply.CorrelationData = bytes(request["correlation_data"])
    reply.ContentType = "application/x-pong"
    reply.UserProperty = ("status", "ok")
    responder.publish(request["response_topic"], b"pong", qos=1, properties=reply).wait_for_publish(
        STEP_TIMEOUT
    )
    response = described(message(requester_events, "the response"))
    check(response["topic"] == REPLIES and response["payload"] == "pong", response)
    check(response["correlation_data"] == list(CORRELATION), ("Correlation Data", response))
    check(response["content_type"] == "application/x-pong", ("Content Type", response))
    check(response["user_properties"] == [["status", "ok"]], ("User Properties", response))
    check(response["subscription_ids"] == [7], ("Subscription Identifier", response))

    stage = "disconnect"
    for c in (requester, responder):
        c.disconnect()
        c.loop_stop()
    print("PATHMQ_RESULT " + json.dumps({"ok": True, "request": request, "response": response}))


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except Exception as error:  # noqa: BLE001 - any failure is reported as the result
        fail(repr(error))
