// Command tokencartctl is a small tokencart client and the example to copy
// for using the generated stubs: it spreads cart calls over every
// catalogsvc replica with gRPC's round_robin policy, retries UNAVAILABLE
// through the service config, sets a deadline on every call and an
// idempotency key on every mutation (see package client). It keeps the
// tokens of the last login and, when a call is refused as unauthenticated,
// refreshes the access token with the refresh token and retries once.
//
//	tokencartctl --plaintext register ada@example.com  # password from TOKENCART_PASSWORD or stdin
//	tokencartctl --plaintext login ada@example.com     # saves the tokens
//	tokencartctl --plaintext products [category]
//	tokencartctl --plaintext cart add espresso-blend-1kg 2
//	tokencartctl --plaintext cart show
//	tokencartctl --plaintext --json cart set espresso-blend-1kg 1
//	tokencartctl --plaintext cart remove espresso-blend-1kg
//	tokencartctl --plaintext cart clear
//	tokencartctl --plaintext logout
//
// (--plaintext, or TOKENCART_PLAINTEXT=true, is for the plaintext services
// of make run; against TLS services give --tls-ca when their CA is not one
// the system trusts.)
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

	"google.golang.org/grpc/credentials"

	"github.com/tokencart/tokencart/client"
	"github.com/tokencart/tokencart/internal/envflag"
	"github.com/tokencart/tokencart/internal/version"
)

const usage = `usage: tokencartctl [flags] COMMAND [ARGS]

commands:
  register EMAIL             create an account (password: $TOKENCART_PASSWORD or stdin)
  login EMAIL                log in and save the tokens
  logout                     end the saved session and forget it
  me                         show the account of the saved session
  products [CATEGORY]        list the catalog
  cart show                  show the cart
  cart add PRODUCT [QTY]     add QTY (default 1) of PRODUCT
  cart set PRODUCT QTY       set the quantity (0 removes)
  cart remove PRODUCT        remove a line
  cart clear                 empty the cart

Output is a table; --json prints the response as protojson instead.

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := realMain(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// realMain runs the command in args and returns the exit status: 0, 1 when
// the command failed (after one line on stderr naming the command and why,
// with the violated field for a bad argument), 2 for a usage error.
func realMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdin, stdout, stderr)
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "tokencartctl:", err)
		return 2
	}
	var ce *commandError
	if errors.As(err, &ce) {
		fmt.Fprintf(stderr, "tokencartctl: %s: %s\n", ce.command, client.Describe(ce.err))
	} else {
		fmt.Fprintln(stderr, "tokencartctl:", client.Describe(err))
	}
	return 1
}

type usageError string

func (e usageError) Error() string { return string(e) }

// commandError is the failure of a command, named as the user typed it.
type commandError struct {
	command string
	err     error
}

func (e *commandError) Error() string { return e.command + ": " + e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

func defaultStateDir() string {
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "tokencart")
	}
	return ".tokencart"
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokencartctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	authAddr := fs.String("auth", "127.0.0.1:8081", "authsvc address or gRPC target")
	catalog := fs.String("catalog", "127.0.0.1:8082,127.0.0.1:8083,127.0.0.1:8084",
		"catalogsvc replicas: comma-separated addresses, or a gRPC target such as dns:///catalogsvc-headless:8082")
	stateDir := fs.String("state-dir", defaultStateDir(), "where the tokens and the request-mode cart state are kept")
	jsonOut := fs.Bool("json", false, "print responses as protojson instead of tables")
	var tf tlsFlags
	fs.BoolVar(&tf.plaintext, "plaintext", false, "call without TLS (the services of make run); never across a network you do not own")
	fs.StringVar(&tf.caFile, "tls-ca", "", "PEM file of the CAs that sign the services' certificates (default: the system's)")
	fs.StringVar(&tf.serverName, "tls-server-name", "", "name the services' certificates must carry, when not the host dialled")
	fs.BoolVar(&tf.insecureSkipVerify, "insecure-skip-verify", false, "INSECURE: accept any server certificate, so anyone on the path can read and change the calls; for debugging a certificate problem only")
	fs.Var(version.NewFlag("tokencartctl"), "version", version.Usage)
	if err := envflag.Parse(fs, "TOKENCART", args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError(err.Error())
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fs.Usage()
		return usageError("no command")
	}
	creds, err := tf.credentials(stderr)
	if err != nil {
		return err
	}
	a := &app{
		authAddr: *authAddr, catalogAddr: *catalog, creds: creds,
		st: state{dir: *stateDir}, out: printer{w: stdout, json: *jsonOut},
		stdin: stdin, stderr: stderr,
	}
	defer a.close()
	name, cmdArgs := rest[0], rest[1:]
	if name == "cart" && len(cmdArgs) > 0 {
		name, cmdArgs = "cart "+cmdArgs[0], cmdArgs[1:]
	}
	if err := a.command(ctx, name, cmdArgs); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			return err
		}
		return &commandError{command: name, err: err}
	}
	return nil
}

// app is one run of the CLI: its settings and its connections, dialled
// when first needed.
type app struct {
	authAddr, catalogAddr string
	creds                 credentials.TransportCredentials
	st                    state
	out                   printer
	stdin                 io.Reader
	stderr                io.Writer

	authConn, catalogConn *client.Conn
}

func (a *app) command(ctx context.Context, name string, args []string) error {
	switch name {
	case "register", "login":
		if len(args) != 1 {
			return usageError(name + " takes EMAIL")
		}
		if name == "register" {
			return a.register(ctx, args[0])
		}
		return a.login(ctx, args[0])
	case "logout":
		return a.logout(ctx)
	case "me":
		return a.me(ctx)
	case "products":
		if len(args) > 1 {
			return usageError("products takes at most a CATEGORY")
		}
		return a.products(ctx, strings.Join(args, ""))
	case "cart":
		return usageError("cart takes show, add, set, remove or clear")
	}
	if strings.HasPrefix(name, "cart ") {
		return a.cart(ctx, strings.TrimPrefix(name, "cart "), args)
	}
	return usageError("unknown command " + strconv.Quote(name))
}

func (a *app) dial(conn **client.Conn, target string) (*client.Conn, error) {
	if *conn == nil {
		c, err := client.Dial(target, client.Options{Creds: a.creds})
		if err != nil {
			return nil, err
		}
		*conn = c
	}
	return *conn, nil
}

func (a *app) close() {
	for _, c := range []*client.Conn{a.authConn, a.catalogConn} {
		if c != nil {
			_ = c.Close()
		}
	}
}

func (a *app) password() (string, error) {
	if pw := os.Getenv("TOKENCART_PASSWORD"); pw != "" {
		return pw, nil
	}
	if f, ok := a.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprint(a.stderr, "password: ")
		}
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
