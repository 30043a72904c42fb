"""python-consul 1.1.0 (a third-party Consul client library) against a Conclave server with ACLs on and
default_policy "deny": what its users meet once a cluster enforces ACLs. python-consul sends tokens as
the deprecated `?token=` query parameter and turns every 403 into `consul.ACLPermissionDenied`.

Usage: python_consul_acl.py HOST:PORT MANAGEMENT_SECRET_ID
Exits non-zero on the first surprise; prints "python-consul acl: ok" at the end.

python-consul 1.1.0's own `c.acl` API is the *legacy* (pre-1.4) token API, and every one of its calls
targets an endpoint Consul 1.11 removed, so none is used here:
  c.acl.list()     -> GET  /v1/acl/list
  c.acl.info(id)   -> GET  /v1/acl/info/<id>
  c.acl.create()   -> PUT  /v1/acl/create
  c.acl.update(id) -> PUT  /v1/acl/update
  c.acl.clone(id)  -> PUT  /v1/acl/clone/<id>
  c.acl.destroy(id)-> PUT  /v1/acl/destroy/<id>
Policies and tokens are therefore made with the modern API (PUT /v1/acl/policy, PUT /v1/acl/token,
DELETE /v1/acl/token/<accessor>) through python-consul's own HTTP client (`c.http`), so the token
still travels the way python-consul sends it."""
import json
import os
import sys
import time
import uuid

import consul
from consul.base import CB

# python-consul lets CONSUL_HTTP_TOKEN override the token it is given; nothing may leak in.
for name in ("CONSUL_HTTP_TOKEN", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY"):
    os.environ.pop(name, None)

host, port = sys.argv[1].split(":")
management_secret = sys.argv[2]


def client(token=None):
    return consul.Consul(host=host, port=int(port), token=token)


def denied(what, call, *wants):
    """Asserts that `call` raises ACLPermissionDenied whose text holds every one of `wants`."""
    try:
        result = call()
    except consul.ACLPermissionDenied as error:
        for want in wants:
            assert want in str(error), f"{what}: {error!r} lacks {want!r}"
        return
    raise AssertionError(f"{what}: returned {result!r}, want ACLPermissionDenied")


def modern(c, method, path, body=None):
    """A call to the modern ACL API through python-consul's HTTP client, token as ?token=."""
    params = [("token", management_secret)]
    if method == "put":
        return c.http.put(CB.json(allow_404=False), path, params=params, data=json.dumps(body))
    if method == "get":
        return c.http.get(CB.json(allow_404=False), path, params=params)
    return c.http.delete(CB.json(allow_404=False), path, params=params)


# The management token can do everything.
mgmt = client(management_secret)
assert mgmt.kv.put("app/a", "1") is True
assert mgmt.kv.put("other/b", "2") is True
_, entry = mgmt.kv.get("other/b")
assert entry["Value"] == b"2", entry
_, entries = mgmt.kv.get("", recurse=True)
assert {"app/a", "other/b"} <= {e["Key"] for e in entries}, entries
self_token = modern(mgmt, "get", "/v1/acl/token/self")
assert self_token["SecretID"] == management_secret, self_token
assert any(p["Name"] == "global-management" for p in self_token["Policies"]), self_token

# A token limited to writing under app/ and registering py-* services.
policy = modern(mgmt, "put", "/v1/acl/policy", {
    "Name": "py-app",
    "Rules": 'key_prefix "app/" { policy = "write" }\nservice_prefix "py-" { policy = "write" }',
})
assert policy["ID"] and policy["Name"] == "py-app", policy
token = modern(mgmt, "put", "/v1/acl/token", {"Description": "python app", "Policies": [{"Name": "py-app"}]})
assert token["SecretID"] and token["AccessorID"], token
assert [p["ID"] for p in token["Policies"]] == [policy["ID"]], token
read = modern(mgmt, "get", "/v1/acl/token/" + token["AccessorID"])
assert read["SecretID"] == token["SecretID"] and read["Description"] == "python app", read
app = client(token["SecretID"])
accessor = token["AccessorID"]

assert app.kv.put("app/x", "hello") is True
_, entry = app.kv.get("app/x")
assert entry["Value"] == b"hello", entry
denied("put other/x with the app token", lambda: app.kv.put("other/x", "no"),
       "Permission denied", accessor, "key:write", "other/x")
denied("get other/b with the app token", lambda: app.kv.get("other/b"), "Permission denied")
denied("delete other/b with the app token", lambda: app.kv.delete("other/b"), "Permission denied")
_, entries = app.kv.get("app/", recurse=True)
assert sorted(e["Key"] for e in entries) == ["app/a", "app/x"], entries
# A listing from the root is filtered down to what the token may read, not refused.
_, entries = app.kv.get("", recurse=True)
assert sorted(e["Key"] for e in entries) == ["app/a", "app/x"], entries
_, keys = app.kv.get("", keys=True)
assert sorted(keys) == ["app/a", "app/x"], keys
assert app.kv.delete("app/a") is True
_, entry = mgmt.kv.get("other/b")
assert entry["Value"] == b"2", "other/b changed under a denied delete"

# Agent registration honours service:write; the catalog is filtered by service:read.
assert app.agent.service.register("py-web", service_id="py-web1", port=80) is True
denied("register web with the app token", lambda: app.agent.service.register("web", service_id="web1", port=80),
       "Permission denied")
# The leader registers the `consul` service just after it is elected.
for _ in range(100):
    _, services = mgmt.catalog.services()
    if "consul" in services:
        break
    time.sleep(0.1)
assert "consul" in services, services
_, services = app.catalog.services()
assert all(name.startswith("py-") for name in services), services

# No token is the anonymous token, which default deny refuses; an unknown secret is "ACL not found".
anonymous = client()
denied("get app/x without a token", lambda: anonymous.kv.get("app/x"), "Permission denied")
denied("put app/x without a token", lambda: anonymous.kv.put("app/x", "no"), "Permission denied")
stranger = client(str(uuid.uuid4()))
denied("get app/x with an unknown token", lambda: stranger.kv.get("app/x"), "ACL not found")

# Deleting the token revokes it at once.
modern(mgmt, "delete", "/v1/acl/token/" + accessor)
denied("put app/x with the deleted token", lambda: app.kv.put("app/x", "again"), "ACL not found")
denied("get app/x with the deleted token", lambda: app.kv.get("app/x"), "ACL not found")
_, entry = mgmt.kv.get("app/x")
assert entry["Value"] == b"hello", entry

print("python-consul acl: ok")
