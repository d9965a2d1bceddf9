package abuse

import (
	"bufio"
	"strconv"
	"strings"
)

// metricValue returns the sum of the samples of the metric name whose
// labels include every one of labels (each `key="value"`), read from the
// Prometheus text exposition text; ok is false when there is none.
func metricValue(text, name string, labels ...string) (sum float64, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a comment, another metric, or one whose name extends name
		}
		if rest[0] == '{' {
			set, after, closed := strings.Cut(rest[1:], "}")
			if !closed || !hasLabels(set, labels) {
				continue
			}
			rest = after
		} else if len(labels) > 0 {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		sum, ok = sum+v, true
	}
	return sum, ok
}

// hasLabels reports whether the label set (the text between braces)
// contains every one of want. Label values here never hold commas.
func hasLabels(set string, want []string) bool {
	have := strings.Split(set, ",")
	for _, w := range want {
		found := false
		for _, h := range have {
			if strings.TrimSpace(h) == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
