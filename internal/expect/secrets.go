package expect

// Looking for secrets in what a service logged: a test records every
// secret its session handles in Secrets, in each spelling a careless log
// line might use, captures the service's JSON log in a LogBuffer, and
// NoSecrets checks every line for them, as written and with its JSON
// strings decoded.

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// LogBuffer is a log sink that a server's goroutines share.
type LogBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

// Write appends p, for a slog handler.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Secrets is what must never appear in a log, by name.
type Secrets map[string]string

// minLen is the shortest secret worth looking for: shorter ones would match
// by chance.
const minLen = 8

// Add records v.
func (s Secrets) Add(name, v string) {
	if len(v) < minLen {
		panic("expect: a secret this short would match by chance: " + name)
	}
	s[name] = v
}

// AddBytes records b in every encoding a log line might carry it: raw,
// hex, and base64 with and without padding, standard and URL-safe (slog's
// JSON handler writes a []byte as padded standard base64).
func (s Secrets) AddBytes(name string, b []byte) {
	s.Add(name+" (raw)", string(b))
	s.Add(name+" (hex)", hex.EncodeToString(b))
	s.Add(name+" (base64)", base64.StdEncoding.EncodeToString(b))
	s.Add(name+" (raw base64)", base64.RawStdEncoding.EncodeToString(b))
	s.Add(name+" (base64url)", base64.URLEncoding.EncodeToString(b))
	s.Add(name+" (raw base64url)", base64.RawURLEncoding.EncodeToString(b))
}

// AddToken records a compact JWS and its signature, the part that makes
// it usable.
func (s Secrets) AddToken(name, raw string) {
	s.Add(name, raw)
	if i := strings.LastIndexByte(raw, '.'); i >= 0 && len(raw)-i-1 >= 16 {
		s.Add(name+" signature", raw[i+1:])
	}
}

// NoSecrets fails t for every line of log that is not a JSON object or that
// contains a secret, as written or in one of its decoded strings (keys
// included), and returns the lines' records for the caller's own checks
// (that the session's failures were logged, so that an empty log cannot
// pass).
func NoSecrets(t testing.TB, log string, secrets Secrets) []map[string]any {
	t.Helper()
	var records []map[string]any
	for i, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %v: %.200s", i+1, err, line)
			continue
		}
		records = append(records, rec)
		var decoded strings.Builder
		collectStrings(rec, &decoded)
		text := line + "\n" + decoded.String()
		for name, v := range secrets {
			if strings.Contains(text, v) {
				// Shown with the secret masked, so that the test's own
				// output does not leak it.
				t.Errorf("log line %d contains the %s: %.300s", i+1, name, strings.ReplaceAll(line, v, "<"+name+">"))
			}
		}
	}
	t.Logf("%d log lines checked for %d secrets", len(records), len(secrets))
	return records
}

func collectStrings(v any, b *strings.Builder) {
	switch v := v.(type) {
	case string:
		b.WriteString(v)
		b.WriteByte('\n')
	case map[string]any:
		for k, e := range v {
			b.WriteString(k)
			b.WriteByte('\n')
			collectStrings(e, b)
		}
	case []any:
		for _, e := range v {
			collectStrings(e, b)
		}
	}
}
