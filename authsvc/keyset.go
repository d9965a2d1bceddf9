package authsvc

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/grpcauth"
	"github.com/tokencart/tokencart/internal/token"
)

// GetKeySet implements authv1.AuthServiceServer.
func (s *Service) GetKeySet(context.Context, *authv1.GetKeySetRequest) (*authv1.GetKeySetResponse, error) {
	return &authv1.GetKeySetResponse{
		JwksJson: string(s.keys.jwks()),
		MaxAge:   durationpb.New(s.cfg.JWKSMaxAge),
	}, nil
}

// RotateSigningKey implements authv1.AuthServiceServer.
func (s *Service) RotateSigningKey(ctx context.Context, _ *authv1.RotateSigningKeyRequest) (*authv1.RotateSigningKeyResponse, error) {
	if err := grpcauth.RequireRole(ctx, token.RoleAdmin); err != nil {
		return nil, err
	}
	if err := s.countCall(ctx, "rotate-signing-key:", s.now(), s.cfg.KeyRotationLimit, time.Hour,
		"too many signing key rotations"); err != nil {
		return nil, err
	}
	k, err := s.keys.rotate(ctx)
	if err != nil {
		return nil, fmt.Errorf("rotate signing key: %w", err)
	}
	return &authv1.RotateSigningKeyResponse{KeyId: k.ID, ActivateTime: timestamppb.New(k.ActivateTime)}, nil
}
