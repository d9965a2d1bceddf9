package version

import "io"

// NewFlagTo is NewFlag printing to out and exiting through exit.
func NewFlagTo(name string, out io.Writer, exit func(int)) *Flag {
	return &Flag{name: name, out: out, exit: exit}
}
