package cluster

import (
	"fmt"
	"strings"
)

// QuickStart returns a copy-paste grpcurl session against a running
// cluster: register, log in, add to the cart through the first catalogsvc
// replica and read the cart back through another. Each element is one
// shell command; they are meant to run in one shell, in order (the login
// line sets TOKEN for the others). grpcurl is the command to invoke.
func QuickStart(grpcurl, authAddr string, catalogAddrs []string, email, password, productID string) []string {
	readAddr := catalogAddrs[len(catalogAddrs)-1]
	creds := fmt.Sprintf(`'{"email": %q, "password": %q}'`, email, password)
	return []string{
		fmt.Sprintf("%s -plaintext %s list", grpcurl, catalogAddrs[0]),
		fmt.Sprintf("%s -plaintext -d %s %s tokencart.auth.v1.AuthService/Register", grpcurl, creds, authAddr),
		fmt.Sprintf(`TOKEN=$(%s -plaintext -d %s %s tokencart.auth.v1.AuthService/Login | sed -n 's/.*"accessToken": "\(.*\)".*/\1/p')`,
			grpcurl, creds, authAddr),
		fmt.Sprintf(`%s -plaintext -d '{"page_size": 5}' %s tokencart.catalog.v1.CatalogService/ListProducts`, grpcurl, catalogAddrs[0]),
		fmt.Sprintf(`%s -plaintext -H "authorization: Bearer $TOKEN" -d '{"product_id": %q, "quantity": 2}' %s tokencart.catalog.v1.CartService/AddItem`,
			grpcurl, productID, catalogAddrs[0]),
		fmt.Sprintf(`%s -plaintext -H "authorization: Bearer $TOKEN" %s tokencart.catalog.v1.CartService/GetCart`, grpcurl, readAddr),
	}
}

// Script joins commands into one shell script that stops at the first
// failure.
func Script(commands []string) string {
	return "set -euo pipefail\n" + strings.Join(commands, "\n") + "\n"
}
