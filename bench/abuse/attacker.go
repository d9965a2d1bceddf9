package abuse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tokencart/tokencart/client"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	catalogv1 "github.com/tokencart/tokencart/gen/tokencart/catalog/v1"
)

// The attacker runs in a process of its own, started at the lowest CPU
// priority (nice 19): on this one machine it stands in for the attacker's
// own machines, so that what the flood costs the legitimate shopper is what
// the services spend on it, not the load generator's CPU. The services and
// the shopper run at normal priority.

// AttackerCommand is the first argument that makes the command the
// attacker's process (RunAttacker).
const AttackerCommand = "attacker"

// AttackerConfig is what the attacker's process is told.
type AttackerConfig struct {
	AuthAddr string   `json:"auth_addr"`
	Replicas []string `json:"replicas"`
	Email    string   `json:"email"`
	Password string   `json:"password"`
	// Tokens are access tokens to forge from at the start.
	Tokens   []string      `json:"tokens"`
	Cycles   int           `json:"cycles"`
	Duration time.Duration `json:"duration"`
}

// attackResult is what an attack counted, as the attacker's process
// reports it.
type attackResult struct {
	Refreshes counts `json:"refreshes"` // RefreshToken with the current token
	Replays   counts `json:"replays"`   // RefreshToken with a spent token, every attempt
	Logins    counts `json:"logins"`
	Replayed  int64  `json:"replayed"`   // spent tokens replayed: answered, not refused by a limit
	SpentLeft int64  `json:"spent_left"` // spent tokens not replayed when the run ended
	WatchEnds counts `json:"watch_ends"` // how each anonymous WatchRevocations attempt ended
	Messages  int64  `json:"messages"`   // stream messages received: must stay 0
	Entries   int64  `json:"entries"`    // revocation entries received: must stay 0
	Forged    counts `json:"forged"`     // forged-token GetCart calls
}

func (a *attack) result() attackResult {
	return attackResult{
		Refreshes: a.churn.refreshes.snapshot(),
		Replays:   a.churn.replays.snapshot(),
		Logins:    a.churn.logins.snapshot(),
		Replayed:  a.churn.replayed.Load(),
		SpentLeft: a.churn.spentLeft.Load(),
		WatchEnds: a.watch.ends.snapshot(),
		Messages:  a.watch.messages.Load(),
		Entries:   a.watch.entries.Load(),
		Forged:    a.forge.counts.snapshot(),
	}
}

// RunAttacker is the attacker's process: it reads an AttackerConfig (JSON)
// from the command line, attacks for its duration from attackerSource, and
// writes what it counted (JSON) to stdout.
func RunAttacker(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("attacker: want one argument, the configuration as JSON")
	}
	var cfg AttackerConfig
	if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
		return fmt.Errorf("attacker: configuration: %w", err)
	}
	var conns []*client.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func(addr string) (*client.Conn, error) {
		c, err := dialFrom(attackerSource, addr)
		if err == nil {
			conns = append(conns, c)
		}
		return c, err
	}
	authConn, err := dial(cfg.AuthAddr)
	if err != nil {
		return err
	}
	tokens := &tokenPool{}
	for _, t := range cfg.Tokens {
		tokens.add(t)
	}
	var carts []catalogv1.CartServiceClient
	for _, addr := range cfg.Replicas {
		c, err := dial(addr)
		if err != nil {
			return err
		}
		carts = append(carts, catalogv1.NewCartServiceClient(c))
	}
	auth := authv1.NewAuthServiceClient(authConn)
	a := &attack{
		churn: &churn{auth: auth, email: cfg.Email, password: cfg.Password, cycles: int64(cfg.Cycles), tokens: tokens},
		watch: &watcher{auth: auth},
		forge: &forger{carts: carts, tokens: tokens},
	}
	actx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	a.run(actx)
	return json.NewEncoder(os.Stdout).Encode(a.result())
}

// attackFor runs the attacker's process, at the lowest CPU priority (when
// the nice command is there), for cfg.Duration and returns what it
// counted.
func attackFor(ctx context.Context, cfg AttackerConfig) (attackResult, error) {
	self, err := os.Executable()
	if err != nil {
		return attackResult{}, fmt.Errorf("attacker: %w", err)
	}
	arg, err := json.Marshal(cfg)
	if err != nil {
		return attackResult{}, err
	}
	name, args := self, []string{AttackerCommand, string(arg)}
	if nice, err := exec.LookPath("nice"); err == nil {
		name, args = nice, append([]string{"-n", "19", self}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return attackResult{}, fmt.Errorf("attacker: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res attackResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return attackResult{}, fmt.Errorf("attacker: result: %w", err)
	}
	return res, nil
}
