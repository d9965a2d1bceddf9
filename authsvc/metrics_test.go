package authsvc_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tokencart/tokencart/authsvc"
	"github.com/tokencart/tokencart/authsvc/authsvctest"
	authv1 "github.com/tokencart/tokencart/gen/tokencart/auth/v1"
	"github.com/tokencart/tokencart/internal/expect"
)

// TestSigningKeyMetrics checks the gauges behind the stalled-rotation
// alert: the signing key's activate time follows a rotation once the new
// key signs, and the rotation interval is the configured one.
func TestSigningKeyMetrics(t *testing.T) {
	t.Parallel()
	clk := &clock{}
	s := authsvctest.Start(t, authsvctest.Options{Configure: func(c *authsvc.Config) {
		c.Now = clk.Now
		c.KeyRotationInterval = 6 * time.Hour
	}})
	cs := s.Service.KeyCollectors()
	if len(cs) != 2 {
		t.Fatalf("%d key collectors, want 2", len(cs))
	}
	activated := func() time.Time {
		return time.Unix(0, int64(gaugeValue(t, cs[0])*1e9))
	}
	if got, want := gaugeValue(t, cs[1]), (6 * time.Hour).Seconds(); got != want {
		t.Errorf("rotation interval gauge = %v, want %v", got, want)
	}
	first := activated()
	if first.After(clk.Now()) || clk.Now().Sub(first) > time.Minute {
		t.Errorf("first key activated at %v, want within the last minute of %v", first, clk.Now())
	}

	rot, err := s.Client.RotateSigningKey(authsvctest.WithToken(t.Context(), s.AdminToken(t)), &authv1.RotateSigningKeyRequest{})
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	want := rot.GetActivateTime().AsTime()
	if got := activated(); !got.Equal(first) {
		t.Errorf("activated gauge = %v before the new key activates, want the first key's %v", got, first)
	}
	clk.Advance(s.Config.KeyPublishDelay)
	expect.Eventually(t, 5*time.Second, "the gauge to show the new key's activate time", func() bool {
		return activated().Sub(want).Abs() < time.Millisecond
	})
}

// gaugeValue collects the one gauge c holds.
func gaugeValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
