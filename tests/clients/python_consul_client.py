"""Drives a Conclave agent with python-consul, a third-party Consul client library, the way its users
do: agent registration with checks, TTL updates, catalog and health reads (blocking included),
maintenance mode, and catalog writes. Exits non-zero on the first surprise."""
import sys
import time

import consul

host, port = sys.argv[1].split(":")
c = consul.Consul(host=host, port=int(port))
node = c.agent.self()["Config"]["NodeName"]
# The server registers itself (node, `consul` service, serfHealth) just after it starts; that touches
# every service on its node, so wait for it before taking blocking-query indexes.
for _ in range(100):
    if "consul" in c.catalog.services()[1]:
        break
    time.sleep(0.1)
assert c.agent.self()["Config"]["Datacenter"] == "dc1"

assert c.agent.service.register(
    "web", service_id="web1", address="10.0.0.1", port=80, tags=["a"],
    check=consul.Check.http("http://10.0.0.1/", "10s"))
assert c.agent.service.register("api", service_id="api1", port=81, check=consul.Check.ttl("15s"))
assert c.agent.check.ttl_pass("service:api1", notes="all good")

services = c.agent.services()
assert set(services) == {"web1", "api1"}, services
checks = c.agent.checks()
assert checks["service:api1"]["Status"] == "passing" and checks["service:api1"]["Output"] == "all good", checks
assert checks["service:web1"]["Definition"]["Interval"] == "10s", checks

index, catalog = c.catalog.services()
assert catalog["web"] == ["a"] and "api" in catalog and int(index) >= 1, catalog
index, rows = c.catalog.service("web")
assert rows[0]["ServiceID"] == "web1" and rows[0]["ServiceAddress"] == "10.0.0.1" and rows[0]["Node"] == node
_, passing = c.health.service("api", passing=True)
assert [e["Service"]["ID"] for e in passing] == ["api1"], passing
_, critical_web = c.health.service("web", passing=True)
assert critical_web == [], critical_web  # its HTTP check has not passed
_, by_state = c.health.state("passing")
assert any(ch["CheckID"] == "service:api1" for ch in by_state)
assert c.status.leader().endswith(":8300")

# A blocking query with nothing changing returns after its wait with the same index. It watches `api`,
# whose TTL check already passed (above): web1's HTTP check may report its first output at any moment.
index, _ = c.catalog.service("api")
again, _ = c.catalog.service("api", index=index, wait="1s")
assert again == index, (again, index)

assert c.catalog.register("ext", "10.1.1.1", service={"Service": "ext-svc", "Port": 1})
assert "ext-svc" in c.catalog.services()[1]
assert c.catalog.deregister("ext")
assert "ext-svc" not in c.catalog.services()[1]

assert c.agent.service.maintenance("web1", True, "deploying")
assert c.agent.checks()["_service_maintenance:web1"]["Status"] == "critical"
assert c.agent.service.maintenance("web1", False)
assert c.agent.maintenance(True, "host work")
assert "_node_maintenance" in c.agent.checks()
assert c.agent.maintenance(False)

assert c.agent.service.deregister("web1")
assert "web1" not in c.agent.services()
print("python-consul: ok")
