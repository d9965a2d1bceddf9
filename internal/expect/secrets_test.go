package expect_test

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tokencart/tokencart/internal/expect"
)

func TestNoSecrets(t *testing.T) {
	key := []byte("0123456789abcdef\x00\xff\"quoted\"")
	s := expect.Secrets{}
	s.Add("password", `pa"ss\word-é`)
	s.AddBytes("key", key)
	s.AddToken("token", "aaaa.bbbb."+strings.Repeat("S", 20))
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want string // a secret that must be among those reported; "" for none
	}{
		{"clean", func(l *slog.Logger) { l.Info("login", "user", "alice") }, ""},
		{"a string escaped by JSON", func(l *slog.Logger) { l.Info("login", "password", `pa"ss\word-é`) }, "password"},
		{"as a key", func(l *slog.Logger) { l.Info("x", `pa"ss\word-é`, 1) }, "password"},
		{"bytes as slog writes them", func(l *slog.Logger) { l.Info("x", "k", key) }, "key (base64)"},
		{"hex inside a message", func(l *slog.Logger) { l.Info("key is " + fmt.Sprintf("%x", key)) }, "key (hex)"},
		{"the signature alone", func(l *slog.Logger) { l.Info("x", "sig", strings.Repeat("S", 20)) }, "token signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log expect.LogBuffer
			tt.log(slog.New(slog.NewJSONHandler(&log, nil)))
			r := &recorder{TB: t}
			records := expect.NoSecrets(r, log.String(), s)
			if len(records) != 1 {
				t.Fatalf("%d records, want 1", len(records))
			}
			if tt.want == "" {
				if len(r.errors) != 0 {
					t.Fatalf("reported %q for a clean log", r.errors)
				}
				return
			}
			named := false
			for _, e := range r.errors {
				named = named || strings.Contains(e, "contains the "+tt.want+":")
				for _, v := range s {
					if strings.Contains(e, v) {
						t.Errorf("report %q shows a secret", e)
					}
				}
			}
			if !named {
				t.Errorf("reported %q, none naming the %s", r.errors, tt.want)
			}
		})
	}
	r := &recorder{TB: t}
	expect.NoSecrets(r, "plain text line\n", s)
	if len(r.errors) != 1 || !strings.Contains(r.errors[0], "not JSON") {
		t.Errorf("text line: reported %q, want one 'not JSON'", r.errors)
	}
}
