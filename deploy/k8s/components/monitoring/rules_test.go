package monitoring_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

// loadRule decodes prometheusrule.yaml strictly.
func loadRule(t *testing.T) monitoringv1.PrometheusRule {
	t.Helper()
	y, err := os.ReadFile("prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	var rules []monitoringv1.PrometheusRule
	if err := decodeInto(j, &rules); err != nil {
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	return rules[0]
}

// promtool returns the path of promtool, which `make tools` installs into
// .tools and `make test` puts on PATH. Without it the test skips, except
// under CI=true, where it fails.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not on PATH (make tools installs it; make test puts .tools on PATH)")
		}
		t.Skip("skipping: promtool not on PATH; run `make tools` and then make test")
	}
	return p
}

// writeRulesFile writes the PrometheusRule's groups as a Prometheus rules
// file, beside a copy of the unit tests that name it, and returns the
// directory.
func writeRulesFile(t *testing.T) string {
	t.Helper()
	rule := loadRule(t)
	dir := t.TempDir()
	groups, err := yaml.Marshal(map[string]any{"groups": rule.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("tests/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"rules.yaml": groups, "alerts.yaml": tests} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestPromtool runs `promtool check rules` on the alert rules and
// `promtool test rules` on their unit tests.
func TestPromtool(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	dir := writeRulesFile(t)
	for _, args := range [][]string{
		{"check", "rules", "rules.yaml"},
		{"test", "rules", "alerts.yaml"},
	} {
		cmd := exec.CommandContext(t.Context(), bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// alertTests is the part of a promtool unit-test file this test reads.
type alertTests struct {
	Tests []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestEveryAlertTestedAndDocumented: every alert has a severity, a summary
// and a description, a runbook annotation naming a section of README.md,
// and unit tests in tests/alerts.yaml in which it fires and in which it
// does not.
func TestEveryAlertTestedAndDocumented(t *testing.T) {
	t.Parallel()
	rule := loadRule(t)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := markdownAnchors(readme)
	b, err := os.ReadFile("tests/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var tests alertTests // a part of the file: not strict
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}

	alerts := 0
	for _, g := range rule.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts++
			switch r.Labels["severity"] {
			case "critical", "warning":
			default:
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			want := "deploy/k8s/components/monitoring/README.md#" + strings.ToLower(r.Alert)
			if got := r.Annotations["runbook"]; got != want {
				t.Errorf("%s: runbook annotation %q, want %q", r.Alert, got, want)
			}
			if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: README.md has no section headed %s", r.Alert, r.Alert)
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no unit test in tests/alerts.yaml in which it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("%s: no unit test in tests/alerts.yaml in which it stays silent", r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Fatal("prometheusrule.yaml has no alert")
	}
}

var heading = regexp.MustCompile(`(?m)^#{1,6}\s+(.+?)\s*$`)

// markdownAnchors returns the anchors GitHub makes of md's headings, for
// headings that are one word (as alert names are).
func markdownAnchors(md []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range heading.FindAllSubmatch(md, -1) {
		h := string(bytes.Trim(m[1], "`"))
		out[strings.ToLower(h)] = true
	}
	return out
}
