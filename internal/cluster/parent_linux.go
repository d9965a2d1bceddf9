package cluster

import "syscall"

// stopWithParent has the kernel send the process SIGTERM (it then drains
// as on any SIGTERM) when the launcher dies without stopping it, even by
// SIGKILL: a killed `make run` or test binary leaves no services behind
// holding their ports. Linux sends it when the launching OS thread exits;
// the Go runtime keeps its threads for the life of the process.
func stopWithParent(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGTERM }
