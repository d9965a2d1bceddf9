package abuse

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
)

// Goals of the scenario: what the flood may cost.
const (
	maxReplicaRSSGrowth = 1 << 20 // bytes, per replica
	maxStoreGrowth      = 1 << 20 // bytes
	maxP99Ratio         = 2.0     // p99 during the flood over p99 before
)

// Report is the outcome of a Run: what the attacker did and got, and what
// it cost the services and the legitimate shopper.
type Report struct {
	opts     Options
	started  time.Time
	took     time.Duration
	cpus     int
	replicas []string // replica names, in the order of the readings

	attack          attackResult
	before, after   readings
	baseline, flood *latencies
	// floodCPU is the CPU seconds used during the flood by authsvc, each
	// replica, the shopper and the attacker, in that order.
	floodCPU []float64
}

// goal is one goal's check.
type goal struct {
	name, figure string
	met          bool
}

func (r *Report) goals() []goal {
	var gs []goal
	for i, name := range r.replicas {
		d := r.after.replicas[i].mem.rss - r.before.replicas[i].mem.rss
		gs = append(gs, goal{name + " RSS growth < 1 MiB", signedMiB(d), d < maxReplicaRSSGrowth})
	}
	d := r.after.store.bytes - r.before.store.bytes
	gs = append(gs, goal{"authsvc store growth < 1 MiB", signedMiB(d), d < maxStoreGrowth})
	gs = append(gs,
		goal{"forged tokens accepted: none", fmt.Sprint(r.attack.Forged.get(codes.OK)), r.attack.Forged.get(codes.OK) == 0},
		goal{"revocation entries sent to anonymous callers: none", fmt.Sprint(r.attack.Entries), r.attack.Entries == 0 && r.attack.Messages == 0})
	ratio := r.p99Ratio()
	gs = append(gs, goal{"legitimate GetCart p99 during ≤ 2× before",
		fmt.Sprintf("%.2f× (%s → %s)", ratio, ms(r.baseline.quantile(0.99)), ms(r.flood.quantile(0.99))), ratio <= maxP99Ratio})
	return gs
}

func (r *Report) p99Ratio() float64 {
	return float64(r.flood.quantile(0.99)) / float64(r.baseline.quantile(0.99))
}

// WriteMarkdown writes the report as Markdown tables.
func (r *Report) WriteMarkdown(w io.Writer) {
	fmt.Fprintf(w, "## Abuse scenario, %s\n\n", r.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "authsvc and %d catalogsvc replicas (store mode, SQLite, production defaults) on %d CPUs; "+
		"flood %v, run %v. The shopper calls from %s, the attacker from %s, in a process of its own at the "+
		"lowest CPU priority (nice 19), standing in for the attacker's own machines: %d churn workers, "+
		"%d anonymous WatchRevocations callers and %d forged-token workers, honouring no RetryInfo "+
		"(pausing %v after a refusal, %v and %v between calls).\n\n",
		len(r.replicas), r.cpus, r.opts.Duration, r.took.Round(time.Second), legitSource, attackerSource,
		churnWorkers, watchCallers, forgeWorkers, refusalPause, watchPause, forgePause)
	r.writeAttack(w)
	r.writeState(w)
	r.writeLatency(w)
	fmt.Fprintln(w, "| goal | figure | result |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	for _, g := range r.goals() {
		result := "MISS"
		if g.met {
			result = "PASS"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", g.name, g.figure, result)
	}
}

func (r *Report) writeAttack(w io.Writer) {
	a := r.attack
	row := func(what string, args ...any) {
		fmt.Fprintf(w, "| %s | %s |\n", what, fmt.Sprint(args...))
	}
	fmt.Fprintln(w, "| attack during the flood | count |")
	fmt.Fprintln(w, "| --- | --- |")
	refused := a.Refreshes.total() - a.Refreshes.get(codes.OK)
	row("churn: refreshes accepted (cycles begun)", a.Refreshes.get(codes.OK), fmt.Sprintf(" of at most %d", r.opts.Cycles))
	row("churn: refreshes refused", refused, " (", a.Refreshes.except(codes.OK), ")")
	row("churn: spent tokens replayed after the reuse grace", a.Replayed,
		" (", a.Replays.total(), " attempts: ", a.Replays.String(), ")")
	row("churn: spent tokens not yet replayed at the end", a.SpentLeft)
	row("churn: logins", a.Logins.total(), " (", a.Logins.String(), ")")
	row("session revocations caused (authsvc's revocations_total{kind=session})",
		int64(r.after.auth.metric("tokencart_authsvc_revocations_total", `kind="session"`)-
			r.before.auth.metric("tokencart_authsvc_revocations_total", `kind="session"`)))
	row("WatchRevocations without credential: attempts", a.WatchEnds.total(), " (", a.WatchEnds.String(), ")")
	row("WatchRevocations: messages / revocation entries leaked", a.Messages, " / ", a.Entries)
	row("forged-token GetCart calls", a.Forged.total(), " (", a.Forged.String(), ")")
	for i, name := range r.replicas {
		b, e := r.before.replicas[i], r.after.replicas[i]
		delta := func(m string) int64 { return int64(e.metric(m) - b.metric(m)) }
		row(name+" guard: refused by address / refused by token / checks failed",
			delta("tokencart_auth_guard_refused_address_total"), " / ",
			delta("tokencart_auth_guard_refused_token_total"), " / ",
			delta("tokencart_auth_failed_checks_total"))
	}
	var cpu []string
	var sum float64
	names := slices.Concat([]string{"authsvc"}, r.replicas, []string{"shopper", "attacker (nice 19)"})
	for i, s := range r.floodCPU {
		cpu = append(cpu, fmt.Sprintf("%s %.1f", names[i], s))
		sum += s
	}
	row("CPU seconds used during the flood", strings.Join(cpu, ", "),
		fmt.Sprintf("; in all %.0f%% of the machine's %d CPUs", 100*sum/(float64(r.cpus)*r.opts.Duration.Seconds()), r.cpus))
	fmt.Fprintln(w)
}

func (r *Report) writeState(w io.Writer) {
	b, a := r.before, r.after
	fmt.Fprintln(w, "| state (before → after the flood) | before | after | growth |")
	fmt.Fprintln(w, "| --- | --- | --- | --- |")
	count := func(what string, x, y int64) {
		fmt.Fprintf(w, "| %s | %d | %d | %+d |\n", what, x, y, y-x)
	}
	bytes := func(what string, x, y int64) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", what, mib(x), mib(y), signedMiB(y-x))
	}
	bytes("authsvc store: bytes in use", b.store.bytes, a.store.bytes)
	count("authsvc store: sessions rows", b.store.sessions, a.store.sessions)
	count("  of the attacker", b.store.attackerSessions, a.store.attackerSessions)
	count("authsvc store: revocation_entries rows", b.store.revocationEntries, a.store.revocationEntries)
	for kind, name := range []string{1: "token", 2: "session", 3: "account"} {
		if name != "" {
			count("  of kind "+name, b.store.entriesByKind[kind], a.store.entriesByKind[kind])
		}
	}
	count("authsvc store: call_counts rows", b.store.callCounts, a.store.callCounts)
	for i, name := range r.replicas {
		x, y := b.replicas[i], a.replicas[i]
		count(name+": revocation entries held (metric)",
			int64(x.metric("tokencart_auth_revocation_entries")), int64(y.metric("tokencart_auth_revocation_entries")))
		count(name+": revocation set complete (metric)",
			int64(x.metric("tokencart_auth_revocation_set_complete")), int64(y.metric("tokencart_auth_revocation_set_complete")))
		bytes(name+": RSS", x.mem.rss, y.mem.rss)
		bytes(name+":   of which anonymous", x.mem.anon, y.mem.anon)
		bytes(name+":   of which file-backed", x.mem.file, y.mem.file)
		bytes(name+": heap in use after GC", x.heapInuse, y.heapInuse)
		bytes(name+": free heap not yet returned to the OS", x.heapUnreleased(), y.heapUnreleased())
		bytes(name+": held by the Go runtime (sys − released)", x.goHeld(), y.goHeld())
		count(name+": goroutines", int64(x.metric("go_goroutines")), int64(y.metric("go_goroutines")))
	}
	bytes("authsvc: RSS", b.auth.mem.rss, a.auth.mem.rss)
	bytes("authsvc: heap in use after GC", b.auth.heapInuse, a.auth.heapInuse)
	fmt.Fprintln(w)
}

func (r *Report) writeLatency(w io.Writer) {
	fmt.Fprintf(w, "| legitimate GetCart (%d callers × %.0f/s) | calls OK | failed | p50 | p99 |\n",
		shopperCallers, float64(time.Second)/float64(shopperInterval))
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- |")
	for _, l := range []struct {
		what string
		lat  *latencies
	}{
		{fmt.Sprintf("before (%v, no attack)", baselineLength), r.baseline},
		{fmt.Sprintf("during the flood (%v)", r.opts.Duration), r.flood},
	} {
		failed := l.lat.codes.total() - l.lat.codes.get(codes.OK)
		detail := ""
		if failed > 0 {
			detail = " (" + l.lat.codes.except(codes.OK) + ")"
		}
		fmt.Fprintf(w, "| %s | %d | %d%s | %s | %s |\n", l.what, len(l.lat.ok), failed, detail, ms(l.lat.quantile(0.5)), ms(l.lat.quantile(0.99)))
	}
	fmt.Fprintf(w, "| p99 during / before | | | | %.2f× |\n\n", r.p99Ratio())
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func mib(b int64) string { return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20)) }

func signedMiB(b int64) string { return fmt.Sprintf("%+.2f MiB", float64(b)/(1<<20)) }
