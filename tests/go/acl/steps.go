// The step groups main runs in order; each takes what the earlier ones produced.
package main

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// bootstrap: the first Bootstrap mints a global-management token; a second one is refused.
func bootstrap(c *api.Client) *api.ACLToken {
	mgmt, _, err := c.ACL().Bootstrap()
	must(err, "first ACL().Bootstrap()")
	check(mgmt.SecretID != "" && mgmt.AccessorID != "" && mgmt.SecretID != mgmt.AccessorID,
		"bootstrap token lacks distinct SecretID/AccessorID: %+v", mgmt)
	check(hasPolicy(mgmt.Policies, globalManagementPolicyID, "global-management"),
		"bootstrap token policies %v lack global-management %s", links(mgmt.Policies), globalManagementPolicyID)

	_, _, err = c.ACL().Bootstrap()
	expectStatus("second ACL().Bootstrap()", err, []int{403}, "ACL bootstrap no longer allowed")
	return mgmt
}

// policies: create, read by ID and name, list, update, and reject invalid rules.
func policies(c *api.Client, mgmt *api.ACLToken) *api.ACLPolicy {
	acl, w, q := c.ACL(), wopts(mgmt.SecretID), qopts(mgmt.SecretID)
	created, _, err := acl.PolicyCreate(&api.ACLPolicy{Name: "app-write", Description: "app keys", Rules: appRules}, w)
	must(err, "PolicyCreate(app-write)")
	check(created.ID != "" && created.Name == "app-write" && created.Rules == appRules,
		"PolicyCreate returned %+v", created)

	read, _, err := acl.PolicyRead(created.ID, q)
	must(err, "PolicyRead")
	check(read != nil && read.ID == created.ID && read.Name == "app-write" && read.Rules == appRules,
		"PolicyRead returned %+v", read)
	byName, _, err := acl.PolicyReadByName("app-write", q)
	must(err, "PolicyReadByName")
	check(byName != nil && byName.ID == created.ID, "PolicyReadByName returned %+v", byName)

	list, _, err := acl.PolicyList(q)
	must(err, "PolicyList")
	names := map[string]string{}
	for _, p := range list {
		names[p.Name] = p.ID
	}
	check(names["app-write"] == created.ID && names["global-management"] == globalManagementPolicyID,
		"PolicyList lacks app-write or global-management: %v", names)

	updated, _, err := acl.PolicyUpdate(&api.ACLPolicy{ID: created.ID, Name: "app-write", Description: "app keys, updated", Rules: appRules}, w)
	must(err, "PolicyUpdate")
	check(updated.Description == "app keys, updated", "PolicyUpdate returned %+v", updated)
	read, _, err = acl.PolicyRead(created.ID, q)
	must(err, "PolicyRead after update")
	check(read.Description == "app keys, updated" && read.ModifyIndex > created.ModifyIndex,
		"PolicyRead after update returned %+v (created at %d)", read, created.ModifyIndex)

	// Consul rejects rules that do not parse; it answers 400 or, where the parse error is not
	// marked as a bad request, 500 — either way the policy must not exist afterwards.
	_, _, err = acl.PolicyCreate(&api.ACLPolicy{Name: "bad-rules", Rules: `key_prefix "x" { policy = "bogus" }`}, w)
	expectStatus("PolicyCreate with policy = \"bogus\"", err, []int{400, 500})
	bad, _, err := acl.PolicyReadByName("bad-rules", q)
	must(err, "PolicyReadByName(bad-rules)")
	check(bad == nil, "the policy with invalid rules was stored: %+v", bad)
	return read
}

// roles: a role linking the policy by name, read by ID and name, listed.
func roles(c *api.Client, mgmt *api.ACLToken, policy *api.ACLPolicy) *api.ACLRole {
	acl, q := c.ACL(), qopts(mgmt.SecretID)
	role, _, err := acl.RoleCreate(&api.ACLRole{Name: "app-role", Description: "app writers",
		Policies: []*api.ACLLink{{Name: policy.Name}}}, wopts(mgmt.SecretID))
	must(err, "RoleCreate")
	check(role.ID != "" && hasPolicy(role.Policies, policy.ID, policy.Name),
		"RoleCreate returned %+v with policies %v", role, links(role.Policies))

	read, _, err := acl.RoleRead(role.ID, q)
	must(err, "RoleRead")
	check(read != nil && read.Name == "app-role" && hasPolicy(read.Policies, policy.ID, policy.Name),
		"RoleRead returned %+v", read)
	byName, _, err := acl.RoleReadByName("app-role", q)
	must(err, "RoleReadByName")
	check(byName != nil && byName.ID == role.ID, "RoleReadByName returned %+v", byName)
	list, _, err := acl.RoleList(q)
	must(err, "RoleList")
	check(slices.ContainsFunc(list, func(r *api.ACLRole) bool { return r.ID == role.ID }), "RoleList lacks app-role: %v", list)
	return role
}

// agentTokens: the client agent accepts its agent and default tokens from a management token; the
// default token then stands in for requests without one, and clearing it makes them anonymous again.
func agentTokens(agent *api.Client, mgmt *api.ACLToken) {
	w := wopts(mgmt.SecretID)
	_, err := agent.Agent().UpdateAgentACLToken(mgmt.SecretID, w)
	must(err, "Agent().UpdateAgentACLToken on the client agent")
	_, err = agent.Agent().UpdateDefaultACLToken(mgmt.SecretID, w)
	must(err, "Agent().UpdateDefaultACLToken on the client agent")
	_, _, err = agent.KV().Get("app/unset", nil)
	must(err, "tokenless KV().Get through the client agent whose default token is the management token")

	_, err = agent.Agent().UpdateDefaultACLToken("", w)
	must(err, "Agent().UpdateDefaultACLToken(\"\") on the client agent")
	_, _, err = agent.KV().Get("app/unset", nil)
	expectStatus("tokenless KV().Get through the client agent after its default token was cleared", err, []int{403}, "Permission denied")
}

// tokens: create, read, read-self, list, clone, update; a role token; a service-identity token
// that may register only its own service on the client agent. Returns the application token.
func tokens(c, agent *api.Client, mgmt *api.ACLToken, policy *api.ACLPolicy, role *api.ACLRole) *api.ACLToken {
	acl, w, q := c.ACL(), wopts(mgmt.SecretID), qopts(mgmt.SecretID)
	app, _, err := acl.TokenCreate(&api.ACLToken{Description: "app token", Policies: []*api.ACLLink{{ID: policy.ID}}}, w)
	must(err, "TokenCreate")
	check(app.AccessorID != "" && app.SecretID != "" && app.Description == "app token" && hasPolicy(app.Policies, policy.ID, policy.Name),
		"TokenCreate returned %+v with policies %v", app, links(app.Policies))

	read, _, err := acl.TokenRead(app.AccessorID, q)
	must(err, "TokenRead")
	check(read.SecretID == app.SecretID && read.Description == "app token" && hasPolicy(read.Policies, policy.ID, policy.Name),
		"TokenRead returned %+v", read)
	self, _, err := acl.TokenReadSelf(qopts(app.SecretID))
	must(err, "TokenReadSelf with the app token")
	check(self.AccessorID == app.AccessorID && self.SecretID == app.SecretID, "TokenReadSelf returned %+v", self)

	list, _, err := acl.TokenList(q)
	must(err, "TokenList")
	byAccessor := map[string]*api.ACLTokenListEntry{}
	for _, t := range list {
		byAccessor[t.AccessorID] = t
	}
	entry := byAccessor[app.AccessorID]
	check(entry != nil, "TokenList lacks the app token %s", app.AccessorID)
	// A token with acl:write (here the management token) sees every SecretID in the listing.
	check(entry.SecretID == app.SecretID, "TokenList shows the app token's SecretID as %q to a management token", entry.SecretID)
	check(byAccessor[mgmt.AccessorID] != nil && byAccessor[anonymousTokenAccessorID] != nil,
		"TokenList lacks the bootstrap token or the anonymous token: %d entries", len(list))

	clone, _, err := acl.TokenClone(app.AccessorID, "app token clone", w)
	must(err, "TokenClone")
	check(clone.AccessorID != app.AccessorID && clone.SecretID != app.SecretID && clone.Description == "app token clone" &&
		hasPolicy(clone.Policies, policy.ID, policy.Name), "TokenClone returned %+v", clone)

	update := *read
	update.Description = "app token, updated"
	updated, _, err := acl.TokenUpdate(&update, w)
	must(err, "TokenUpdate")
	check(updated.AccessorID == app.AccessorID && updated.SecretID == app.SecretID && updated.Description == "app token, updated" &&
		hasPolicy(updated.Policies, policy.ID, policy.Name), "TokenUpdate returned %+v", updated)

	withRole, _, err := acl.TokenCreate(&api.ACLToken{Description: "role token", Roles: []*api.ACLLink{{ID: role.ID}}}, w)
	must(err, "TokenCreate with the role")
	check(len(withRole.Roles) == 1 && withRole.Roles[0].ID == role.ID && withRole.Roles[0].Name == role.Name,
		"role token links %v", links(withRole.Roles))
	_, err = c.KV().Put(&api.KVPair{Key: "app/from-role", Value: []byte("r")}, wopts(withRole.SecretID))
	must(err, "KV().Put(app/from-role) with the role token")

	serviceIdentity(agent, acl, w)
	return updated
}

// serviceIdentity: a token with ServiceIdentities [db] registers "db" on the client agent but not "web2".
func serviceIdentity(agent *api.Client, acl *api.ACL, w *api.WriteOptions) {
	db, _, err := acl.TokenCreate(&api.ACLToken{Description: "db identity",
		ServiceIdentities: []*api.ACLServiceIdentity{{ServiceName: "db"}}}, w)
	must(err, "TokenCreate with ServiceIdentities [db]")
	check(len(db.ServiceIdentities) == 1 && db.ServiceIdentities[0].ServiceName == "db", "db token identities %+v", db.ServiceIdentities)

	register := func(name string) error {
		return agent.Agent().ServiceRegisterOpts(&api.AgentServiceRegistration{ID: name, Name: name, Port: 5432},
			api.ServiceRegisterOpts{Token: db.SecretID})
	}
	// The client agent resolves the new token through a server; allow that server to catch up with
	// the raft log (an "ACL not found" for a token that was just created), and nothing else.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = register("db")
		if err == nil || !strings.Contains(err.Error(), "ACL not found") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	must(err, "Agent().ServiceRegister(db) with the db service-identity token")
	expectStatus("Agent().ServiceRegister(web2) with the db service-identity token", register("web2"),
		[]int{403}, "Permission denied", "service:write")
	services, err := agent.Agent().ServicesWithFilterOpts("", qopts(db.SecretID))
	must(err, "Agent().Services with the db token")
	_, hasDB := services["db"]
	_, hasWeb2 := services["web2"]
	check(hasDB && !hasWeb2, "client agent services with the db token: %v", keys(services))
}

// kvEnforcement: the app token writes under app/ only; listings and key listings are filtered and
// say so in X-Consul-Results-Filtered-By-ACLs.
func kvEnforcement(c *api.Client, mgmt, app *api.ACLToken) {
	kv := c.KV()
	_, err := kv.Put(&api.KVPair{Key: "app/x", Value: []byte("1")}, wopts(app.SecretID))
	must(err, "KV().Put(app/x) with the app token")
	_, err = kv.Put(&api.KVPair{Key: "other/x", Value: []byte("1")}, wopts(app.SecretID))
	expectStatus("KV().Put(other/x) with the app token", err, []int{403},
		"Permission denied", "AccessorID '"+app.AccessorID+"'", "key:write", `"other/x"`)
	_, err = kv.Put(&api.KVPair{Key: "other/y", Value: []byte("2")}, wopts(mgmt.SecretID))
	must(err, "KV().Put(other/y) with the management token")

	pair, _, err := kv.Get("app/x", qopts(app.SecretID))
	must(err, "KV().Get(app/x) with the app token")
	check(pair != nil && string(pair.Value) == "1", "KV().Get(app/x) returned %+v", pair)

	pairs, meta, err := kv.List("", qopts(app.SecretID))
	must(err, "KV().List(\"\") with the app token")
	var listed []string
	for _, p := range pairs {
		listed = append(listed, p.Key)
	}
	check(len(listed) > 0 && allUnder(listed, "app/") && slices.Contains(listed, "app/x"),
		"KV().List(\"\") with the app token returned %v, want only app/ keys including app/x", listed)
	check(meta.ResultsFilteredByACLs, "KV().List(\"\") with the app token: X-Consul-Results-Filtered-By-ACLs not true")

	allPairs, meta, err := kv.List("", qopts(mgmt.SecretID))
	must(err, "KV().List(\"\") with the management token")
	check(slices.ContainsFunc(allPairs, func(p *api.KVPair) bool { return p.Key == "other/y" }), "management listing lacks other/y")
	check(!meta.ResultsFilteredByACLs, "KV().List(\"\") with the management token claims results were filtered")

	listedKeys, meta, err := kv.Keys("", "", qopts(app.SecretID))
	must(err, "KV().Keys with the app token")
	check(len(listedKeys) > 0 && allUnder(listedKeys, "app/"), "KV().Keys with the app token returned %v", listedKeys)
	check(meta.ResultsFilteredByACLs, "KV().Keys with the app token: X-Consul-Results-Filtered-By-ACLs not true")
}

// catalogFiltering: with service_prefix "web" read, the catalog shows web* services only.
func catalogFiltering(c *api.Client, mgmt, app *api.ACLToken) {
	for _, name := range []string{"web1", "web-api", "db"} {
		_, err := c.Catalog().Register(&api.CatalogRegistration{Node: "acl-external", Address: "10.131.0.9",
			Service: &api.AgentService{ID: name, Service: name, Port: 8080}}, wopts(mgmt.SecretID))
		must(err, "Catalog().Register("+name+") with the management token")
	}
	services, meta, err := c.Catalog().Services(qopts(app.SecretID))
	must(err, "Catalog().Services with the app token")
	_, web1 := services["web1"]
	_, webAPI := services["web-api"]
	_, db := services["db"]
	check(web1 && webAPI && !db, "Catalog().Services with the app token returned %v, want web1 and web-api without db", keys(services))
	for name := range services {
		check(strings.HasPrefix(name, "web"), "Catalog().Services with the app token shows %q", name)
	}
	check(meta.ResultsFilteredByACLs, "Catalog().Services with the app token: X-Consul-Results-Filtered-By-ACLs not true")

	entries, _, err := c.Health().Service("db", "", false, qopts(app.SecretID))
	must(err, "Health().Service(db) with the app token")
	check(len(entries) == 0, "Health().Service(db) with the app token returned %d entries", len(entries))
	entries, _, err = c.Health().Service("web1", "", false, qopts(app.SecretID))
	must(err, "Health().Service(web1) with the app token")
	check(len(entries) == 1 && entries[0].Node.Node == "acl-external", "Health().Service(web1) with the app token returned %d entries", len(entries))
}

// anonymousAndUnknownTokens: an unknown secret is "ACL not found"; no token means the anonymous
// token, which default deny refuses a single-key read with 403.
func anonymousAndUnknownTokens(c *api.Client) {
	_, _, err := c.KV().Get("app/x", qopts(randomUUID()))
	expectStatus("KV().Get(app/x) with a random token", err, []int{403}, "ACL not found")
	_, err = c.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("nope")}, wopts(randomUUID()))
	expectStatus("KV().Put(app/x) with a random token", err, []int{403}, "ACL not found")

	_, _, err = c.KV().Get("app/x", nil)
	expectStatus("KV().Get(app/x) without a token", err, []int{403}, "Permission denied")
	_, err = c.KV().Put(&api.KVPair{Key: "app/x", Value: []byte("nope")}, nil)
	expectStatus("KV().Put(app/x) without a token", err, []int{403}, "Permission denied", anonymousTokenAccessorID)
}

// revocation: once the app token is deleted, every server refuses it.
func revocation(c *api.Client, servers []*api.Client, mgmt, app *api.ACLToken) {
	_, err := c.ACL().TokenDelete(app.AccessorID, wopts(mgmt.SecretID))
	must(err, "TokenDelete(app token)")
	for i, server := range servers {
		_, err := server.KV().Put(&api.KVPair{Key: "app/y", Value: []byte("revoked")}, wopts(app.SecretID))
		expectStatus(fmt.Sprintf("KV().Put(app/y) with the deleted token on server %d", i+1), err, []int{403}, "ACL not found")
		_, _, err = server.KV().Get("app/x", &api.QueryOptions{Token: app.SecretID, AllowStale: false})
		expectStatus(fmt.Sprintf("KV().Get(app/x) with the deleted token on server %d", i+1), err, []int{403}, "ACL not found")
	}
	_, _, err = c.ACL().TokenRead(app.AccessorID, qopts(mgmt.SecretID))
	expectStatus("TokenRead of the deleted token", err, []int{403, 404}, "not found")
}

func allUnder(keys []string, prefix string) bool {
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			return false
		}
	}
	return true
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func links(ls []*api.ACLLink) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Name+"="+l.ID)
	}
	return out
}

func randomUUID() string {
	b := make([]byte, 16)
	_, err := rand.Read(b)
	must(err, "crypto/rand")
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
