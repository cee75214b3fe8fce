package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/runner"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults for zero Options fields.
const (
	DefaultStartTimeout = 10 * time.Second
	DefaultTailLines    = 20
)

// drainDelay bounds how long the exit of a handler waits for its stdout and
// stderr to be read to EOF; a grandchild that inherited them could otherwise
// hold Exited open for as long as it lives.
const drainDelay = 250 * time.Millisecond

var (
	// ErrChecksumMismatch is returned (wrapped, with both sums) by Start when
	// Options.Checksum does not match the executable; nothing was started.
	ErrChecksumMismatch = errors.New("plugin: executable checksum mismatch")
	// ErrReleased is returned by the control methods of a Process after
	// Release or after the process has exited.
	ErrReleased = errors.New("plugin: control connection released")
)

// Options configure Start. The zero value is usable except for Log.
type Options struct {
	// Checksum, when not empty, is the hex SHA-256 the executable
	// (cmd.Path) must have. It is checked before the process starts, with
	// go-plugin's SecureConfig; the usual time-of-check/time-of-use caveat
	// applies: keep handler binaries where only their owner can write.
	Checksum string
	// StartTimeout bounds the time from cmd.Start to a connected control
	// service (go-plugin handshake on stdout, gRPC connection, attach). Zero
	// means DefaultStartTimeout.
	StartTimeout time.Duration
	// Log receives the handler's output lines (field stream: stdout or
	// stderr; level guessed from the line, Info by default) and go-plugin's
	// own logging (Debug only). The caller adds its fields (worker_id, …);
	// Start adds pid unless the entry already has it. Required.
	Log *logrus.Entry
	// TailLines is the number of output lines Process.Tail keeps. Zero means
	// DefaultTailLines; negative keeps none.
	TailLines int
	// TempDir is where go-plugin makes the directory of the handler's gRPC
	// socket (removed when the handler exits). Empty means os.TempDir();
	// the manager passes a directory its master removes even when the
	// manager is killed, so nothing is left in /tmp.
	TempDir string
	// SocketGroup, when the handler runs as another user, is the group
	// (name or gid) go-plugin gives its socket directory, group-writable,
	// so that the handler can create its socket there.
	SocketGroup string
}

// StartError is returned by Start when the process was started but did not
// complete the handshake. By the time Start returns it the process has been
// killed (SIGKILL, to its process group when the caller set Setpgid) and
// reaped: nothing is left behind.
type StartError struct {
	Err error
	// State is the exit status of the process (killed by Start or exited on
	// its own), so the caller can apply its exit-code rules.
	State *os.ProcessState
	// Tail holds the last output lines of the process, oldest first.
	Tail []string
}

// Error implements error.
func (e *StartError) Error() string {
	msg := fmt.Sprintf("plugin start: %v", e.Err)
	if e.State != nil {
		msg += " (" + e.State.String() + ")"
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *StartError) Unwrap() error { return e.Err }

// Process is a handler started by Start. Its control methods are safe for
// concurrent use. The process is never killed or stopped by Process (except
// by Start on failure): stopping it is the caller's business (stop frame,
// RequestStop, signals), and Exited tells when it is gone.
type Process struct {
	cmd    *exec.Cmd
	out    *output
	exited chan struct{} // closed after cmd.Wait returned and output drained

	// Set by the runner before go-plugin sees the process; read-only after.
	tmpDir     string
	stdoutR    *os.File // our end of the child's stdout
	stderrR    *os.File // our end of the child's stderr
	handshakeR *io.PipeReader
	handshakeW *io.PipeWriter // what go-plugin reads instead of stdout
	pumpsDone  chan struct{}
	started    bool
	killGroup  bool

	mu      sync.Mutex
	ctl     *controlClient // nil before connect and after release
	gone    bool           // exited or released: ctl must stay nil
	reaped  bool
	waitErr error
}

// Start launches cmd through go-plugin and returns once the handler has
// completed the handshake and its control service answered, or with an
// error.
//
// cmd is prepared completely by the caller and not yet started; Start only
// appends go-plugin's variables (the magic cookie, the socket directory,
// the protocol versions) to cmd.Env — to os.Environ() if cmd.Env is nil —
// and sets cmd.Stdout and cmd.Stderr to pipes, which must therefore be nil.
// Path, Args, Dir, ExtraFiles and SysProcAttr are used as they are, so fd 3
// is whatever the caller put in ExtraFiles[0].
//
// cmd.Start runs on the calling goroutine: a caller that locked its OS
// thread for Pdeathsig gets a child tied to that thread. Go's Pdeathsig
// fires when that thread exits, so the caller keeps it alive until Exited
// is closed. The caller must not call cmd.Wait: Process waits for the child
// and reports through Exited and ExitState; cmd.Process may be used to send
// signals.
//
// The time from cmd.Start to the end of Start is bounded by
// Options.StartTimeout. On failure after cmd.Start the error is a
// *StartError; a checksum mismatch is ErrChecksumMismatch and starts nothing.
func Start(cmd *exec.Cmd, opts Options) (*Process, error) {
	switch {
	case opts.Log == nil:
		return nil, errors.New("plugin start: Options.Log is required")
	case cmd.Process != nil:
		return nil, errors.New("plugin start: cmd already started")
	case cmd.Stdout != nil || cmd.Stderr != nil:
		return nil, errors.New("plugin start: cmd.Stdout and cmd.Stderr must be nil (stdout carries the handshake; both are captured)")
	case cmd.Err != nil:
		return nil, fmt.Errorf("plugin start: %w", cmd.Err)
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.TailLines == 0 {
		opts.TailLines = DefaultTailLines
	}
	if opts.Checksum != "" {
		if err := verifyChecksum(cmd.Path, opts.Checksum); err != nil {
			return nil, err
		}
	}

	p := &Process{
		cmd:       cmd,
		out:       newOutput(opts.Log, max(opts.TailLines, 0)),
		exited:    make(chan struct{}),
		pumpsDone: make(chan struct{}),
		killGroup: cmd.SysProcAttr != nil && cmd.SysProcAttr.Setpgid && cmd.SysProcAttr.Pgid == 0,
	}
	client := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  handshake(),
		Plugins:          goplugin.PluginSet{controlPluginName: &controlPlugin{}},
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		// Our runner starts the caller's cmd; go-plugin's own would
		// overwrite cmd.Stdin and wait for the child in its goroutine.
		RunnerFunc: func(_ hclog.Logger, pcmd *exec.Cmd, tmpDir string) (runner.Runner, error) {
			return p.prepare(pcmd, tmpDir, opts.Log)
		},
		// Only go-plugin's variables in pcmd.Env: the caller's Env (or
		// os.Environ) comes first in prepare, so the caller's values win
		// over the host's — go-plugin would append os.Environ() after them.
		SkipHostEnv:      true,
		UnixSocketConfig: &goplugin.UnixSocketConfig{TempDir: opts.TempDir, Group: opts.SocketGroup},
		StartTimeout:     opts.StartTimeout,
		Logger:           hclogger(opts.Log),
		// What the handler writes to os.Stdout/os.Stderr between the
		// handshake and the attach arrives through go-plugin's stdio
		// stream; after the attach, Serve points them back at fd 1 and 2.
		SyncStdout: &lineWriter{fn: func(s string) { p.out.line("stdout", s) }},
		SyncStderr: &lineWriter{fn: func(s string) { p.out.line("stderr", s) }},
	})

	deadline := time.Now().Add(opts.StartTimeout)
	if _, err := client.Start(); err != nil {
		return nil, p.startFailed(err)
	}
	// go-plugin's StartTimeout covers the handshake line only; the timer
	// covers connecting and attaching, which a misbehaving handler could
	// stall: killing the process makes every call below return.
	timedOut := make(chan struct{})
	guard := time.AfterFunc(time.Until(deadline), func() {
		close(timedOut)
		p.kill()
	})
	err := p.connect(client, deadline)
	if !guard.Stop() {
		<-timedOut
		err = fmt.Errorf("timeout after %v while connecting to the control service (%v)", opts.StartTimeout, err)
	}
	if err != nil {
		return nil, p.startFailed(err)
	}
	return p, nil
}

func verifyChecksum(path, want string) error {
	sum, err := hex.DecodeString(want)
	if err != nil || len(sum) != sha256.Size {
		return fmt.Errorf("plugin start: checksum %q is not a hex SHA-256 (64 hex digits)", want)
	}
	sc := &goplugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
	ok, err := sc.Check(path)
	if err != nil {
		return fmt.Errorf("plugin start: verify checksum of %s: %w", path, err)
	}
	if !ok {
		return fmt.Errorf("%w: %s has sha256 %x, want %s", ErrChecksumMismatch, path, sc.Hash.Sum(nil), strings.ToLower(want))
	}
	return nil
}

// connect creates go-plugin's gRPC client and attaches to the control
// service: the handler's Serve returns when the attach arrives.
func (p *Process) connect(client *goplugin.Client, deadline time.Time) error {
	rpc, err := client.Client()
	if err != nil {
		return err
	}
	raw, err := rpc.Dispense(controlPluginName)
	if err != nil {
		return err
	}
	ctl := raw.(*controlClient)
	p.mu.Lock()
	gone := p.gone
	if !gone {
		p.ctl = ctl
	}
	p.mu.Unlock()
	if gone {
		ctl.close()
		return errors.New("plugin exited during start")
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := ctl.attach(ctx); err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	return nil
}

// startFailed kills and reaps whatever was started and describes the
// failure.
func (p *Process) startFailed(err error) error {
	if !p.started {
		if p.tmpDir != "" {
			_ = os.RemoveAll(p.tmpDir)
		}
		return fmt.Errorf("plugin start: %w", err)
	}
	p.kill()
	<-p.exited
	return &StartError{Err: err, State: p.cmd.ProcessState, Tail: p.out.tail()}
}

// prepare is go-plugin's RunnerFunc: pcmd carries go-plugin's environment
// for the handler, tmpDir the directory for the handler's gRPC socket.
func (p *Process) prepare(pcmd *exec.Cmd, tmpDir string, log *logrus.Entry) (runner.Runner, error) {
	p.tmpDir = tmpDir
	env := p.cmd.Env
	if env == nil {
		env = os.Environ()
	}
	p.cmd.Env = append(slices.Clip(env), pcmd.Env...)

	var err error
	var stdoutW, stderrW *os.File
	if p.stdoutR, stdoutW, err = os.Pipe(); err != nil {
		return nil, err
	}
	if p.stderrR, stderrW, err = os.Pipe(); err != nil {
		p.stdoutR.Close()
		stdoutW.Close()
		return nil, err
	}
	// *os.File, so exec passes the descriptors as they are and Wait does
	// not wait for copying goroutines.
	p.cmd.Stdout, p.cmd.Stderr = stdoutW, stderrW
	p.handshakeR, p.handshakeW = io.Pipe()
	return &procRunner{p: p, log: log}, nil
}

// procRunner is the runner.Runner go-plugin drives. It starts the caller's
// cmd on the calling goroutine, owns the wait, and shows go-plugin only the
// handshake line of the child's stdout.
type procRunner struct {
	p   *Process
	log *logrus.Entry
}

var _ runner.Runner = (*procRunner)(nil)

func (r *procRunner) Start(context.Context) error {
	p := r.p
	err := p.cmd.Start()
	// The child has its copies (or failed to start): ours must go, or we
	// would never see EOF.
	p.cmd.Stdout.(*os.File).Close()
	p.cmd.Stderr.(*os.File).Close()
	if err != nil {
		p.stdoutR.Close()
		p.stderrR.Close()
		p.handshakeW.Close()
		return err
	}
	p.started = true
	if _, ok := r.log.Data["pid"]; !ok {
		p.out.setLog(r.log.WithField("pid", p.cmd.Process.Pid))
	}

	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() {
		defer pumps.Done()
		p.pumpStdout()
	}()
	go func() {
		defer pumps.Done()
		pump(p.stderrR, func(s string) { p.out.line("stderr", s) })
		p.stderrR.Close()
	}()
	go func() {
		pumps.Wait()
		close(p.pumpsDone)
	}()
	go p.wait()
	return nil
}

// pumpStdout passes the handshake line to go-plugin and logs every other
// line: one printed before Serve (which would otherwise be taken for a
// broken handshake) and anything written to fd 1 after it.
func (p *Process) pumpStdout() {
	handshakeSeen := false
	pump(p.stdoutR, func(s string) {
		if !handshakeSeen && isHandshakeLine(s) {
			handshakeSeen = true
			// go-plugin reads one line; EOF afterwards lets it stop reading.
			_, _ = io.WriteString(p.handshakeW, s+"\n")
			p.handshakeW.Close()
			return
		}
		p.out.line("stdout", s)
	})
	p.handshakeW.Close()
	p.stdoutR.Close()
}

// isHandshakeLine recognises go-plugin's
// "CORE-VERSION|APP-VERSION|NETWORK|ADDR|PROTOCOL|…" line.
func isHandshakeLine(s string) bool {
	parts := strings.SplitN(s, "|", 4)
	if len(parts) < 4 || (parts[2] != "unix" && parts[2] != "tcp") {
		return false
	}
	for _, v := range parts[:2] {
		if _, err := strconv.ParseUint(v, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// wait reaps the child, lets the output pumps drain, then releases
// everything Start created and closes exited.
func (p *Process) wait() {
	err := p.cmd.Wait()
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()

	t := time.NewTimer(drainDelay)
	select {
	case <-p.pumpsDone:
	case <-t.C:
		// Someone else still holds the pipes; stop reading them.
		p.stdoutR.Close()
		p.stderrR.Close()
		<-p.pumpsDone
	}
	t.Stop()
	// go-plugin may still be blocked on the handshake pipe if it gave up.
	p.handshakeR.Close()

	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	p.Release()
	if p.tmpDir != "" {
		_ = os.RemoveAll(p.tmpDir)
	}
	close(p.exited)
}

// kill sends SIGKILL to the child (to its process group if the caller set
// Setpgid) unless it has already been reaped.
func (p *Process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.reaped {
		return
	}
	pid := p.cmd.Process.Pid
	if p.killGroup {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	_ = p.cmd.Process.Kill()
}

func (r *procRunner) Wait(context.Context) error {
	<-r.p.exited
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.p.waitErr
}

// Kill is called by go-plugin only when the handshake fails.
func (r *procRunner) Kill(context.Context) error {
	r.p.kill()
	return nil
}

func (r *procRunner) Stdout() io.ReadCloser { return r.p.handshakeR }

// Stderr gives go-plugin nothing: the stderr pump logs the lines itself.
func (r *procRunner) Stderr() io.ReadCloser { return io.NopCloser(strings.NewReader("")) }

func (r *procRunner) Name() string { return r.p.cmd.Path }

func (r *procRunner) ID() string {
	if r.p.cmd.Process == nil {
		return ""
	}
	return strconv.Itoa(r.p.cmd.Process.Pid)
}

func (r *procRunner) Diagnose(context.Context) string {
	return "the handler closed stdout or exited before the go-plugin handshake: " +
		"is it built with drover's Go SDK, and does it call the SDK before anything else?"
}

func (r *procRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *procRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// Pid returns the handler's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed once the handler has exited and been reaped, its output
// read, and the control connection released. ExitState is set by then.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitState returns the handler's exit status once Exited is closed, nil
// before.
func (p *Process) ExitState() *os.ProcessState {
	select {
	case <-p.exited:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Tail returns the last Options.TailLines lines the handler wrote to stderr
// or stdout, oldest first, in the order they were read. After Exited it
// holds everything the handler wrote before it died.
func (p *Process) Tail() []string { return p.out.tail() }

func (p *Process) control() (*controlClient, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctl == nil {
		return nil, ErrReleased
	}
	return p.ctl, nil
}

// Health checks the handler's control service with the standard gRPC health
// check; ctx bounds the call.
func (p *Process) Health(ctx context.Context) error {
	c, err := p.control()
	if err != nil {
		return err
	}
	if err := c.health(ctx); err != nil {
		return fmt.Errorf("plugin health: %w", err)
	}
	return nil
}

// Stats returns the handler's Go runtime figures.
func (p *Process) Stats(ctx context.Context) (RuntimeStats, error) {
	c, err := p.control()
	if err != nil {
		return RuntimeStats{}, err
	}
	st, err := c.stats(ctx)
	if err != nil {
		return RuntimeStats{}, fmt.Errorf("plugin stats: %w", err)
	}
	return st, nil
}

// RequestStop asks the handler to stop gracefully: its Serve callback runs
// (once, however often this is called) before the call returns. The handler
// is expected to finish in-flight work and exit; RequestStop does not wait
// for that — watch Exited.
func (p *Process) RequestStop(ctx context.Context) error {
	c, err := p.control()
	if err != nil {
		return err
	}
	if err := c.stop(ctx); err != nil {
		// A handler may act on the request before its answer is written and
		// exit; the dropped connection then means it was heard.
		if status.Code(err) == codes.Unavailable {
			select {
			case <-p.Exited():
				return nil
			case <-ctx.Done():
			}
		}
		return fmt.Errorf("plugin stop request: %w", err)
	}
	return nil
}

// Release closes the control connection and go-plugin's broker without
// touching the process (unlike go-plugin's Client.Kill, it sends no
// Shutdown and kills nothing). Control methods return ErrReleased
// afterwards. It is called automatically when the process exits; calling it
// more than once is harmless.
func (p *Process) Release() {
	p.mu.Lock()
	c := p.ctl
	p.ctl, p.gone = nil, true
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}
