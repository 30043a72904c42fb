"""Coordination flows of python-consul (a third-party Consul client library) against a Conclave cluster:
CAS increments from competing threads, a session lock with handoff, a blocking watch, and a transaction.

Usage: python_consul_kv.py before HOST:PORT...   (leaves a counter and a held lock, prints the session)
       python_consul_kv.py after SESSION HOST:PORT...   (after the leader was killed: all still there)
Exits non-zero on the first surprise."""
import sys
import threading
import time

import consul

THREADS, INCREMENTS = 4, 15


def client(address):
    host, port = address.split(":")
    return consul.Consul(host=host, port=int(port), consistency="consistent")


def retry(what, call, seconds=30):
    """Calls `call` until it stops raising (a leader election may be under way)."""
    deadline = time.time() + seconds
    while True:
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - any transport or 5xx error is retried
            if time.time() > deadline:
                raise AssertionError(f"{what}: {error}") from error
            time.sleep(0.3)


def increment(c, key):
    """Read-then-CAS until one CAS wins, as python-consul users write counters."""
    while True:
        index, entry = retry("read counter", lambda: c.kv.get(key))
        current = int(entry["Value"]) if entry else 0
        modify_index = entry["ModifyIndex"] if entry else 0
        if retry("cas", lambda: c.kv.put(key, str(current + 1), cas=modify_index)):
            return


def cas_counter(addresses, key, total_expected):
    workers = [
        threading.Thread(target=lambda a=a: [increment(client(a), key) for _ in range(INCREMENTS)])
        for a in (addresses * THREADS)[:THREADS]
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    _, entry = client(addresses[0]).kv.get(key)
    assert int(entry["Value"]) == total_expected, (entry, total_expected)


def blocking_watch(c):
    index, _ = c.kv.get("watch/me")
    seen = {}

    def watch():
        seen["index"], seen["entry"] = c.kv.get("watch/me", index=index, wait="20s")

    watcher = threading.Thread(target=watch)
    watcher.start()
    time.sleep(0.5)
    assert watcher.is_alive(), "the watch returned before anything changed"
    c.kv.put("watch/other", "noise")
    time.sleep(1.0)
    assert watcher.is_alive(), "a write to another key woke the watch"
    c.kv.put("watch/me", "changed")
    watcher.join(10)
    assert not watcher.is_alive(), "the watch did not wake for its key"
    assert seen["entry"]["Value"] == b"changed" and seen["index"] > index, seen


def before(addresses):
    c = client(addresses[0])
    # Each agent's node must be in the catalog before sessions can name it.
    holder = retry("session create", lambda: c.session.create(name="holder", ttl=20, lock_delay=1))
    rival = retry("session create", lambda: client(addresses[1]).session.create(name="rival", lock_delay=0))
    assert c.kv.put("service/leader", "holder", acquire=holder) is True
    assert c.kv.put("service/leader", "rival", acquire=rival) is False
    _, entry = c.kv.get("service/leader")
    assert entry["Session"] == holder and entry["LockIndex"] == 1, entry
    assert c.kv.put("service/leader", "released", release=holder) is True
    assert client(addresses[1]).kv.put("service/leader", "rival", acquire=rival) is True
    assert client(addresses[1]).kv.put("service/leader", "", release=rival) is True
    assert c.kv.put("service/leader", "holder", acquire=holder) is True
    _, info = c.session.info(holder)
    assert info["TTL"] == "20s" and info["Behavior"] == "release", info

    cas_counter(addresses, "counter", THREADS * INCREMENTS)
    blocking_watch(c)

    ops = [
        {"KV": {"Verb": "set", "Key": "txn/never", "Value": "eA=="}},
        {"KV": {"Verb": "cas", "Key": "counter", "Value": "b3ZlcndyaXR0ZW4=", "Index": 1}},
    ]
    try:
        answer = str(c.txn.put(ops))  # the library may return the 409 body or raise on it
    except Exception as error:  # noqa: BLE001
        answer = str(error)
    assert "index is stale" in answer, f"a transaction with a stale CAS must be refused: {answer}"
    assert c.kv.get("txn/never")[1] is None, "the rolled-back transaction left a key"
    committed = c.txn.put([{"KV": {"Verb": "set", "Key": "txn/done", "Value": "eQ=="}}, {"KV": {"Verb": "get", "Key": "counter"}}])
    assert committed["Results"][1]["KV"]["Key"] == "counter", committed


def after(session, addresses):
    c = client(addresses[0])
    renewed = retry("renew through the new leader", lambda: c.session.renew(session))
    assert renewed and renewed["ID"] == session, renewed
    _, entry = retry("read lock", lambda: c.kv.get("service/leader"))
    assert entry["Session"] == session, f"the lock survived the leader's death: {entry}"
    _, counter = c.kv.get("counter")
    assert int(counter["Value"]) == THREADS * INCREMENTS, counter
    cas_counter(addresses, "counter", 2 * THREADS * INCREMENTS)
    assert c.session.destroy(session)
    _, entry = c.kv.get("service/leader")
    assert "Session" not in entry or not entry["Session"], entry


if __name__ == "__main__":
    phase = sys.argv[1]
    if phase == "before":
        addresses = sys.argv[2:]
        before(addresses)
        _, entry = client(addresses[0]).kv.get("service/leader")
        print(f"session {entry['Session']}")
    else:
        after(sys.argv[2], sys.argv[3:])
    print("python-consul kv: ok")
