// Command acl drives Conclave's ACL system with HashiCorp's reference Go client
// (github.com/hashicorp/consul/api) the way an operator and an application would: bootstrap,
// policies, roles, tokens, KV and catalog enforcement, anonymous and unknown tokens, revocation seen
// by every server, agent tokens, and a JWT auth method with login and logout.
//
// Usage: go run . -servers 127.0.0.1:8500,127.0.0.2:8500,127.0.0.3:8500 -client 127.0.0.4:8500
//
// The cluster must have ACLs enabled with default_policy "deny" and must not be bootstrapped yet.
// The program exits non-zero with a message on the first surprise and prints
// "go consul/api acl: ok" when every check held.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hashicorp/consul/api"
)

// Well-known IDs Consul creates on bootstrap.
const (
	globalManagementPolicyID = "00000000-0000-0000-0000-000000000001"
	anonymousTokenAccessorID = "00000000-0000-0000-0000-000000000002"
)

// appRules is the policy the application tokens carry.
const appRules = `key_prefix "app/" { policy = "write" }
service_prefix "web" { policy = "read" }
node_prefix "" { policy = "read" }`

func main() {
	servers := flag.String("servers", "", "comma-separated host:port HTTP addresses of the servers")
	clientAddr := flag.String("client", "", "host:port HTTP address of the client agent")
	flag.Parse()
	if *servers == "" || *clientAddr == "" {
		fail("usage: go run . -servers ADDR,ADDR,... -client ADDR")
	}
	// The api package reads CONSUL_HTTP_* from the environment; none of it may leak into the checks.
	for _, name := range []string{"CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "CONSUL_HTTP_ADDR", "CONSUL_HTTP_AUTH", "CONSUL_HTTP_SSL", "CONSUL_NAMESPACE", "CONSUL_PARTITION"} {
		os.Unsetenv(name)
	}

	var serverClients []*api.Client
	for _, addr := range strings.Split(*servers, ",") {
		serverClients = append(serverClients, newClient(strings.TrimSpace(addr)))
	}
	c := serverClients[0]
	agent := newClient(*clientAddr)

	mgmt := bootstrap(c)
	policy := policies(c, mgmt)
	role := roles(c, mgmt, policy)
	agentTokens(agent, mgmt)
	app := tokens(c, agent, mgmt, policy, role)
	kvEnforcement(c, mgmt, app)
	catalogFiltering(c, mgmt, app)
	anonymousAndUnknownTokens(c)
	revocation(c, serverClients, mgmt, app)
	jwtLogin(c, mgmt)

	fmt.Println("go consul/api acl: ok")
}

// newClient returns a client for one agent with no default token (requests are anonymous unless
// they carry a token in their options).
func newClient(addr string) *api.Client {
	client, err := api.NewClient(&api.Config{Address: addr, Scheme: "http"})
	must(err, "api.NewClient("+addr+")")
	return client
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go consul/api acl: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func check(ok bool, format string, args ...any) {
	if !ok {
		fail(format, args...)
	}
}

// expectStatus asserts that err is an HTTP error with one of the codes whose body contains every
// one of wants.
func expectStatus(what string, err error, codes []int, wants ...string) {
	if err == nil {
		fail("%s: succeeded, want HTTP %v containing %q", what, codes, wants)
	}
	var status api.StatusError
	if !errors.As(err, &status) {
		fail("%s: want HTTP %v, got a non-HTTP error: %v", what, codes, err)
	}
	if !slices.Contains(codes, status.Code) {
		fail("%s: want HTTP %v, got %d: %s", what, codes, status.Code, status.Body)
	}
	for _, want := range wants {
		if !strings.Contains(status.Body, want) {
			fail("%s: HTTP %d body %q lacks %q", what, status.Code, status.Body, want)
		}
	}
}

func wopts(token string) *api.WriteOptions { return &api.WriteOptions{Token: token} }

func qopts(token string) *api.QueryOptions { return &api.QueryOptions{Token: token} }

func hasPolicy(links []*api.ACLLink, id, name string) bool {
	return slices.ContainsFunc(links, func(l *api.ACLLink) bool { return l.ID == id && l.Name == name })
}
