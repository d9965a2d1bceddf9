package bench

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WriteCapacityPlot draws the capacity of each design against the replica
// count into path; its extension (.svg, .png, .pdf) picks the format.
func WriteCapacityPlot(path string, m CapacityModel, caps []DesignCapacity) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Sustainable calls/s vs replicas (%g-core replicas, %g-core PostgreSQL, %.0f %% utilisation)",
		m.ReplicaCores, m.PostgresCores, m.Utilization*100)
	p.X.Label.Text = "replicas"
	p.Y.Label.Text = "calls/s (log scale)"
	// Request mode grows to a million calls a second while the designs
	// bound by PostgreSQL stay in the tens of thousands: on a linear axis
	// they would lie flat on the floor.
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	// Bottom right: on the log axis, below the PostgreSQL-bound lines.
	p.Legend.Top, p.Legend.Left = false, false
	for i, c := range caps {
		pts := make(plotter.XYs, len(c.Throughput))
		for n, v := range c.Throughput {
			pts[n].X, pts[n].Y = float64(n+1), v
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("capacity plot: %s: %w", c.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(c.Name, line)
	}
	if err := p.Save(9*vg.Inch, 6*vg.Inch, path); err != nil {
		return fmt.Errorf("capacity plot: %w", err)
	}
	return nil
}

// Capacity returns the default model's projection of rep's figures.
func (rep *Report) Capacity() []DesignCapacity {
	return DefaultCapacityModel.Project(capacityDesigns(rep))
}
