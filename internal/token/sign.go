package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// SigningKey is an Ed25519 private key with its key id.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// GenerateSigningKey returns a new Ed25519 key with a random key id.
func GenerateSigningKey() (SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return SigningKey{ID: NewID(), Private: priv}, nil
}

// Public returns the key's public half.
func (k SigningKey) Public() ed25519.PublicKey {
	return k.Private.Public().(ed25519.PublicKey)
}

// privateClaims are the claims beyond the registered ones.
type privateClaims struct {
	// ClientID is the RFC 9068 client_id claim.
	ClientID string `json:"client_id"`
	// AuthTime is the OpenID Connect auth_time claim, omitted when unknown.
	AuthTime *jwt.NumericDate `json:"auth_time,omitempty"`
	Roles    []string         `json:"roles"`
	// SessionID is the OpenID Connect "sid" claim (registered in the IANA
	// JWT claims registry), omitted when empty.
	SessionID string `json:"sid,omitempty"`
}

// Sign returns c as a compact JWS signed with key. It sets the kid and typ
// headers; c.KeyID is ignored.
func Sign(key SigningKey, c Claims) (string, error) {
	if err := c.validateForSigning(); err != nil {
		return "", err
	}
	if len(key.Private) != ed25519.PrivateKeySize || key.ID == "" {
		return "", fmt.Errorf("sign: invalid signing key")
	}
	opts := (&jose.SignerOptions{}).WithType(Type).WithHeader(jose.HeaderKey("kid"), key.ID)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key.Private}, opts)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	std := jwt.Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: jwt.Audience(c.Audience),
		Expiry:   jwt.NewNumericDate(c.Expiry),
		IssuedAt: jwt.NewNumericDate(c.IssuedAt),
		ID:       c.TokenID,
	}
	nbf := c.NotBefore
	if nbf.IsZero() {
		nbf = c.IssuedAt
	}
	std.NotBefore = jwt.NewNumericDate(nbf)
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	priv := privateClaims{ClientID: c.ClientID, Roles: roles, SessionID: c.SessionID}
	if !c.AuthTime.IsZero() {
		priv.AuthTime = jwt.NewNumericDate(c.AuthTime)
	}
	raw, err := jwt.Signed(signer).Claims(std).Claims(priv).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return raw, nil
}
