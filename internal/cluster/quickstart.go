package cluster

import (
	"fmt"
	"strings"
)

// Admin names the account the launcher has authsvc create at start as the
// bootstrap admin, and the file that holds its password.
type Admin struct {
	Email        string
	PasswordFile string
}

// QuickStart returns a copy-paste grpcurl session against a running
// cluster: register, log in, add to the cart through the first catalogsvc
// replica and read the cart back through another, then log in as the admin
// (its password read from its file) and show its roles, and fetch authsvc's
// OpenID Connect discovery document and key set from its issuer URL with
// curl, as a token consumer does. Each element is one
// shell command; they are meant to run in one shell, in order (the login
// lines set TOKEN and ADMIN_TOKEN for the others). grpcurl is the command
// to invoke.
func QuickStart(grpcurl, authAddr, issuer string, catalogAddrs []string, email, password, productID string, admin Admin) []string {
	readAddr := catalogAddrs[len(catalogAddrs)-1]
	creds := fmt.Sprintf(`'{"email": %q, "password": %q}'`, email, password)
	adminCreds := fmt.Sprintf(`"{\"email\": \"%s\", \"password\": \"$(cat %s)\"}"`, admin.Email, admin.PasswordFile)
	accessToken := `sed -n 's/.*"accessToken": "\(.*\)".*/\1/p'`
	return []string{
		fmt.Sprintf("%s -plaintext %s list", grpcurl, catalogAddrs[0]),
		fmt.Sprintf("%s -plaintext -d %s %s tokencart.auth.v1.AuthService/Register", grpcurl, creds, authAddr),
		fmt.Sprintf(`TOKEN=$(%s -plaintext -d %s %s tokencart.auth.v1.AuthService/Login | %s)`, grpcurl, creds, authAddr, accessToken),
		fmt.Sprintf(`%s -plaintext -d '{"page_size": 5}' %s tokencart.catalog.v1.CatalogService/ListProducts`, grpcurl, catalogAddrs[0]),
		fmt.Sprintf(`%s -plaintext -H "authorization: Bearer $TOKEN" -d '{"product_id": %q, "quantity": 2}' %s tokencart.catalog.v1.CartService/AddItem`,
			grpcurl, productID, catalogAddrs[0]),
		fmt.Sprintf(`%s -plaintext -H "authorization: Bearer $TOKEN" %s tokencart.catalog.v1.CartService/GetCart`, grpcurl, readAddr),
		fmt.Sprintf(`ADMIN_TOKEN=$(%s -plaintext -d %s %s tokencart.auth.v1.AuthService/Login | %s)`, grpcurl, adminCreds, authAddr, accessToken),
		fmt.Sprintf(`%s -plaintext -H "authorization: Bearer $ADMIN_TOKEN" %s tokencart.auth.v1.AuthService/GetMe`, grpcurl, authAddr),
		fmt.Sprintf("curl -fsS %s/.well-known/openid-configuration", issuer),
		fmt.Sprintf("curl -fsS %s/.well-known/jwks.json", issuer),
	}
}

// Script joins commands into one shell script that stops at the first
// failure.
func Script(commands []string) string {
	return "set -euo pipefail\n" + strings.Join(commands, "\n") + "\n"
}
