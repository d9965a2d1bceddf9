//go:build !linux

package cluster

import "syscall"

// stopWithParent does nothing here: only Linux can tie a process's life to
// its parent's. Stop the launcher with Ctrl-C or SIGTERM, so it stops the
// services first.
func stopWithParent(*syscall.SysProcAttr) {}
