package main

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
)

func (a *app) auth() (authv1.AuthServiceClient, error) {
	conn, err := a.dial(&a.authConn, a.authAddr)
	if err != nil {
		return nil, err
	}
	return authv1.NewAuthServiceClient(conn), nil
}

// authWithPassword reads the password, then returns the authsvc client
// to present it to.
func (a *app) authWithPassword() (authv1.AuthServiceClient, string, error) {
	pw, err := a.password()
	if err != nil {
		return nil, "", err
	}
	auth, err := a.auth()
	return auth, pw, err
}

func (a *app) register(ctx context.Context, email string) error {
	auth, pw, err := a.authWithPassword()
	if err != nil {
		return err
	}
	resp, err := auth.Register(ctx, &authv1.RegisterRequest{Email: email, Password: pw})
	if err != nil {
		return err
	}
	return a.out.user(resp.GetUser())
}

func (a *app) login(ctx context.Context, email string) error {
	auth, pw, err := a.authWithPassword()
	if err != nil {
		return err
	}
	resp, err := auth.Login(ctx, &authv1.LoginRequest{Email: email, Password: pw})
	if err != nil {
		return err
	}
	if err := a.st.saveLogin(resp.GetAccessToken(), resp.GetRefreshToken()); err != nil {
		return err
	}
	if a.out.json {
		return a.out.user(resp.GetUser()) // never the tokens: they are secrets
	}
	_, err = fmt.Fprintf(a.out.w, "logged in as %s; session saved in %s until %s\n", resp.GetUser().GetEmail(), a.st.dir,
		resp.GetRefreshTokenExpireTime().AsTime().Local().Format("2006-01-02 15:04"))
	return err
}

func (a *app) logout(ctx context.Context) error {
	auth, err := a.auth()
	if err != nil {
		return err
	}
	refresh, err := a.st.refreshToken()
	if err != nil {
		return err
	}
	err = a.authed(ctx, func(ctx context.Context) error {
		_, err := auth.Logout(ctx, &authv1.LogoutRequest{RefreshToken: refresh})
		return err
	})
	if err != nil {
		return err
	}
	return a.st.forget()
}

func (a *app) me(ctx context.Context) error {
	auth, err := a.auth()
	if err != nil {
		return err
	}
	var resp *authv1.GetMeResponse
	err = a.authed(ctx, func(ctx context.Context) error {
		resp, err = auth.GetMe(ctx, &authv1.GetMeRequest{})
		return err
	})
	if err != nil {
		return err
	}
	return a.out.user(resp.GetUser())
}

// authed makes call with the saved access token. If the call is refused as
// unauthenticated (the token expired, or was revoked alone) and a refresh
// token is saved, it gets new tokens with it, saves them, and makes the
// call once more. A refresh token that no longer works means logging in
// again, which the error says.
func (a *app) authed(ctx context.Context, call func(ctx context.Context) error) error {
	access, err := a.st.token()
	if err != nil {
		return err
	}
	err = call(client.WithToken(ctx, access))
	if status.Code(err) != codes.Unauthenticated {
		return err
	}
	refresh, rerr := a.st.refreshToken()
	switch {
	case rerr != nil:
		return rerr
	case refresh == "":
		return err
	}
	auth, rerr := a.auth()
	if rerr != nil {
		return rerr
	}
	resp, rerr := auth.RefreshToken(ctx, &authv1.RefreshTokenRequest{RefreshToken: refresh})
	if rerr != nil {
		if status.Code(rerr) == codes.Unauthenticated {
			return fmt.Errorf("the session has ended, run tokencartctl login EMAIL (%s)", client.Describe(rerr))
		}
		return rerr
	}
	if err := a.st.saveTokens(resp.GetAccessToken(), resp.GetRefreshToken()); err != nil {
		return err
	}
	return call(client.WithToken(ctx, resp.GetAccessToken()))
}
