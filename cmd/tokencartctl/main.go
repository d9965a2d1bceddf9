// Command tokencartctl is a small tokencart client and the example to copy
// for using the generated stubs: it spreads cart calls over every
// catalogsvc replica with gRPC's round_robin policy, retries UNAVAILABLE
// through the service config, sets a deadline on every call and an
// idempotency key on every mutation (see package client).
//
//	tokencartctl register ada@example.com     # password from TOKENCART_PASSWORD or stdin
//	tokencartctl login ada@example.com        # saves the access token
//	tokencartctl products [category]
//	tokencartctl cart add espresso-beans-1kg 2
//	tokencartctl cart show
//	tokencartctl cart set espresso-beans-1kg 1
//	tokencartctl cart remove espresso-beans-1kg
//	tokencartctl cart clear
//	tokencartctl logout
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
	"github.com/tokencart/tokencart/internal/envflag"
)

const usage = `usage: tokencartctl [flags] COMMAND [ARGS]

commands:
  register EMAIL             create an account (password: $TOKENCART_PASSWORD or stdin)
  login EMAIL                log in and save the access token
  logout                     revoke the saved token and forget it
  me                         show the account of the saved token
  products [CATEGORY]        list the catalog
  cart show                  show the cart
  cart add PRODUCT [QTY]     add QTY (default 1) of PRODUCT
  cart set PRODUCT QTY       set the quantity (0 removes)
  cart remove PRODUCT        remove a line
  cart clear                 empty the cart

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "tokencartctl:", err)
			os.Exit(2)
		}
		if s, ok := status.FromError(err); ok {
			fmt.Fprintf(os.Stderr, "tokencartctl: %s: %s\n", s.Code(), s.Message())
		} else {
			fmt.Fprintln(os.Stderr, "tokencartctl:", err)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "tokencart")
	}
	return ".tokencart"
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("tokencartctl", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	authAddr := fs.String("auth", "127.0.0.1:8081", "authsvc address or gRPC target")
	catalog := fs.String("catalog", "127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084",
		"catalogsvc replicas: comma-separated addresses, or a gRPC target such as dns:///catalogsvc-headless:8082")
	stateDir := fs.String("state-dir", defaultStateDir(), "where the access token and the request-mode cart state are kept")
	if err := envflag.Parse(fs, "TOKENCART", args); err != nil {
		return usageError(err.Error())
	}
	st := state{dir: *stateDir}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usageError("no command")
	}
	out := func(m proto.Message) error {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, string(b))
		return err
	}
	switch cmd, a := rest[0], rest[1:]; cmd {
	case "register", "login":
		if len(a) != 1 {
			return usageError(cmd + " takes EMAIL")
		}
		pw, err := password(stdin)
		if err != nil {
			return err
		}
		conn, err := client.Dial(*authAddr, client.Options{})
		if err != nil {
			return err
		}
		defer conn.Close()
		auth := authv1.NewAuthServiceClient(conn)
		if cmd == "register" {
			resp, err := auth.Register(ctx, &authv1.RegisterRequest{Email: a[0], Password: pw})
			if err != nil {
				return err
			}
			return out(resp.GetUser())
		}
		resp, err := auth.Login(ctx, &authv1.LoginRequest{Email: a[0], Password: pw})
		if err != nil {
			return err
		}
		if err := st.saveToken(resp.GetAccessToken()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "logged in as %s until %s; token saved in %s\n",
			resp.GetUser().GetEmail(), resp.GetAccessTokenExpireTime().AsTime().Local().Format("2006-01-02 15:04"), st.dir)
		return nil
	case "logout", "me":
		tok, err := st.token()
		if err != nil {
			return err
		}
		conn, err := client.Dial(*authAddr, client.Options{})
		if err != nil {
			return err
		}
		defer conn.Close()
		auth := authv1.NewAuthServiceClient(conn)
		ctx = client.WithToken(ctx, tok)
		if cmd == "me" {
			resp, err := auth.GetMe(ctx, &authv1.GetMeRequest{})
			if err != nil {
				return err
			}
			return out(resp.GetUser())
		}
		if _, err := auth.Logout(ctx, &authv1.LogoutRequest{}); err != nil {
			return err
		}
		return st.forget()
	case "products":
		conn, err := client.Dial(*catalog, client.Options{})
		if err != nil {
			return err
		}
		defer conn.Close()
		cat := catalogv1.NewCatalogServiceClient(conn)
		req := &catalogv1.ListProductsRequest{PageSize: 100}
		if len(a) > 0 {
			req.Category = a[0]
		}
		for {
			resp, err := cat.ListProducts(ctx, req)
			if err != nil {
				return err
			}
			for _, p := range resp.GetProducts() {
				fmt.Fprintf(stdout, "%-28s %-12s %10s  %s\n", p.GetId(), p.GetCategory(), money(p.GetPrice()), p.GetName())
			}
			if resp.GetNextPageToken() == "" {
				return nil
			}
			req.PageToken = resp.GetNextPageToken()
		}
	case "cart":
		return cartCommand(ctx, a, *catalog, st, out)
	default:
		return usageError("unknown command " + strconv.Quote(cmd))
	}
}

func password(stdin io.Reader) (string, error) {
	if pw := os.Getenv("TOKENCART_PASSWORD"); pw != "" {
		return pw, nil
	}
	fmt.Fprint(os.Stderr, "password: ")
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func money(m *catalogv1.Money) string {
	if m == nil {
		return "-"
	}
	return fmt.Sprintf("%d.%02d %s", m.GetUnits(), abs(m.GetNanos())/10_000_000, m.GetCurrencyCode())
}

func abs(n int32) int32 {
	if n < 0 {
		return -n
	}
	return n
}
