package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaVariables are the dashboard's template variables that stand where
// PromQL needs a duration, with a value to parse them with. Variables
// inside label matchers ("$namespace") are plain strings to PromQL.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$__range", "1h",
)

// metricNames returns the metric names the PromQL expression expr selects,
// parsed by Prometheus' own parser.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && m.Type != labels.MatchEqual {
				t.Errorf("%s: %q selects metric names by a pattern; name them", where, expr)
			}
			if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			t.Errorf("%s: %q has a selector without a metric name", where, expr)
			return nil
		}
		names = append(names, name)
		return nil
	})
	slices.Sort(names)
	return slices.Compact(names)
}

// dashboardPanel is the part of a Grafana panel that holds queries.
type dashboardPanel struct {
	Title   string                  `json:"title"`
	Targets []struct{ Expr string } `json:"targets"`
	Panels  []dashboardPanel        `json:"panels"` // a collapsed row's panels
}

// dashboardQueries returns every PromQL query in dashboard.json, panels'
// and template variables', keyed by where it is.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels     []dashboardPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	out := map[string]string{}
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			for i, tg := range p.Targets {
				out[fmt.Sprintf("panel %q query %d", p.Title, i)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("dashboard.json: variable %s: %v", v.Name, err)
		}
		// label_values(<selector>, <label>) is Grafana's, not PromQL; the
		// selector inside is PromQL.
		sel, ok := strings.CutPrefix(q.Query, "label_values(")
		i := strings.LastIndex(sel, ",")
		if !ok || i < 0 {
			t.Fatalf("dashboard.json: variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
		}
		out["variable "+v.Name] = sel[:i]
	}
	if len(out) == 0 {
		t.Fatal("dashboard.json has no query")
	}
	return out
}
