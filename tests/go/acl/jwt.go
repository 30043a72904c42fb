// The JWT auth method step: an RSA key made at run time, a jwt auth method trusting its public key,
// a binding rule granting the app-write policy to role=ci, login, use, and logout.
package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/consul/api"
)

// jwtLogin: a signed JWT with aud=conclave and role=ci logs in to a token bound to app-write,
// which can write app/z; after Logout the token is gone.
func jwtLogin(c *api.Client, mgmt *api.ACLToken) {
	acl, w, q := c.ACL(), wopts(mgmt.SecretID), qopts(mgmt.SecretID)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(err, "rsa.GenerateKey")
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(err, "x509.MarshalPKIXPublicKey")
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))

	method, _, err := acl.AuthMethodCreate(&api.ACLAuthMethod{
		Name:        "ci-jwt",
		Type:        "jwt",
		Description: "CI jobs",
		Config: map[string]interface{}{
			"JWTValidationPubKeys": []string{pubPEM},
			"BoundAudiences":       []string{"conclave"},
			"ClaimMappings":        map[string]string{"role": "role"},
		},
	}, w)
	must(err, "AuthMethodCreate(jwt)")
	check(method.Name == "ci-jwt" && method.Type == "jwt", "AuthMethodCreate returned %+v", method)
	read, _, err := acl.AuthMethodRead("ci-jwt", q)
	must(err, "AuthMethodRead")
	check(read != nil && read.Type == "jwt" && read.Config["BoundAudiences"] != nil, "AuthMethodRead returned %+v", read)

	rule, _, err := acl.BindingRuleCreate(&api.ACLBindingRule{
		AuthMethod: "ci-jwt",
		BindType:   api.BindingRuleBindTypePolicy,
		BindName:   "app-write",
		Selector:   `value.role == "ci"`,
	}, w)
	must(err, "BindingRuleCreate")
	check(rule.ID != "" && rule.BindName == "app-write", "BindingRuleCreate returned %+v", rule)
	rules, _, err := acl.BindingRuleList("ci-jwt", q)
	must(err, "BindingRuleList")
	check(len(rules) == 1 && rules[0].ID == rule.ID, "BindingRuleList returned %d rules", len(rules))

	now := time.Now()
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub":  "ci-job-1",
		"aud":  []string{"conclave"},
		"role": "ci",
		"iat":  now.Unix(),
		"nbf":  now.Add(-time.Minute).Unix(),
		"exp":  now.Add(5 * time.Minute).Unix(),
	}).SignedString(key)
	must(err, "sign JWT")

	login, _, err := acl.Login(&api.ACLLoginParams{AuthMethod: "ci-jwt", BearerToken: signed}, nil)
	must(err, "ACL().Login with the JWT")
	check(login.SecretID != "" && login.AuthMethod == "ci-jwt", "Login returned %+v", login)
	check(len(login.Policies) == 1 && login.Policies[0].Name == "app-write", "login token policies %v, want app-write", links(login.Policies))
	_, err = c.KV().Put(&api.KVPair{Key: "app/z", Value: []byte("ci")}, wopts(login.SecretID))
	must(err, "KV().Put(app/z) with the login token")
	_, err = c.KV().Put(&api.KVPair{Key: "other/z", Value: []byte("ci")}, wopts(login.SecretID))
	expectStatus("KV().Put(other/z) with the login token", err, []int{403}, "Permission denied", "key:write")

	// A JWT whose role claim does not match the selector binds nothing, so login is refused.
	other, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"sub": "dev-1", "aud": []string{"conclave"}, "role": "dev", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}).SignedString(key)
	must(err, "sign JWT")
	_, _, err = acl.Login(&api.ACLLoginParams{AuthMethod: "ci-jwt", BearerToken: other}, nil)
	expectStatus("ACL().Login with role=dev", err, []int{403}, "Permission denied")

	_, err = acl.Logout(wopts(login.SecretID))
	must(err, "ACL().Logout with the login token")
	_, err = c.KV().Put(&api.KVPair{Key: "app/z", Value: []byte("after logout")}, wopts(login.SecretID))
	expectStatus("KV().Put(app/z) with the logged-out token", err, []int{403}, "ACL not found")
}
