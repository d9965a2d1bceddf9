// Package cluster starts and stops tokencart's service binaries as separate
// operating-system processes on one machine: the `make run` launcher and the
// end-to-end scaling and chaos tests use it to run authsvc and a changing
// number of catalogsvc replicas the way an operator would.
package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Spec describes one process to start.
type Spec struct {
	// Name prefixes every line the process prints, e.g. "catalogsvc-2".
	Name string
	// Path is the binary.
	Path string
	// Args are the command-line arguments.
	Args []string
	// Env is added to the launcher's own environment.
	Env []string
	// GRPCAddr is where the process serves gRPC, for health checks.
	GRPCAddr string
}

// Process is a started service process.
type Process struct {
	Spec Spec

	cmd  *exec.Cmd
	done chan struct{}
	// err is the process's exit error; written once before done closes.
	err error
}

// Output is where several processes' output lines go, each prefixed with
// its process name and written whole.
type Output struct {
	mu sync.Mutex // guards w, so lines of two processes never interleave
	w  io.Writer
}

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

func (o *Output) copyLines(r io.Reader, name string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		o.mu.Lock()
		fmt.Fprintf(o.w, "%-13s | %s\n", name, sc.Text())
		o.mu.Unlock()
	}
	_, _ = io.Copy(io.Discard, r)
}

// Printf writes text of the launcher's own (lines ending in a newline),
// whole: no process's line lands in the middle of it.
func (o *Output) Printf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.w, format, args...)
}

// Start starts spec's process, copying its output to out.
func Start(spec Spec, out *Output) (*Process, error) {
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	// A process group of its own: a Ctrl-C at the terminal reaches the
	// launcher only, which then drains the services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stopWithParent(cmd.SysProcAttr)
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Process{Spec: spec, cmd: cmd, done: make(chan struct{})}
	var copying sync.WaitGroup
	copying.Go(func() { out.copyLines(pr, spec.Name) })
	go func() {
		err := cmd.Wait()
		pw.Close()
		copying.Wait()
		p.err = err
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the exit error once Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.Spec.Name, err)
	}
	return nil
}

// Kill ends the process at once (SIGKILL), as a crash would, and waits.
func (p *Process) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the process to drain (SIGTERM) and waits up to timeout before
// killing it. It returns the exit error of a process that did not exit 0.
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v; killed", p.Spec.Name, timeout)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.Spec.Name, p.err)
	}
	return nil
}

// StopAll stops every process in procs as Stop does, all at once, so that
// stopping them takes as long as the slowest, not their sum. It returns
// their errors joined.
func StopAll(timeout time.Duration, procs ...*Process) error {
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.Stop(timeout) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitServing polls the process's gRPC health service until the overall
// status is SERVING, the process exits, or ctx ends.
func (p *Process) WaitServing(ctx context.Context) error {
	conn, err := grpc.NewClient(p.Spec.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("%s: %w", p.Spec.Name, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(cctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not serving on %s: %w", p.Spec.Name, p.Spec.GRPCAddr, ctx.Err())
		case <-p.done:
			return fmt.Errorf("%s exited before serving: %w", p.Spec.Name, p.err)
		case <-tick.C:
		}
	}
}
