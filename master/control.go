package master

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/drover-dev/drover/ipc"
	"github.com/drover-dev/drover/shm"
)

// The control socket speaks one JSON object per line: a Request from the
// CLI, a Response from the master. After a stop request the master keeps
// the connection open until it exits, so the CLI learns that the whole
// tree is gone from the connection's EOF rather than by polling.

// Request is a control command.
type Request struct {
	Cmd   string `json:"cmd"` // "status", "stop", "reload", "upgrade", "scale" or "reopen-logs"
	Force bool   `json:"force,omitempty"`
	Tasks bool   `json:"tasks,omitempty"` // reload, scale: task workers only
	N     int    `json:"n,omitempty"`     // scale: the pool's new size
}

// Response answers a Request.
type Response struct {
	OK bool `json:"ok"`
	// Progress marks a line that more lines follow (reload).
	Progress  bool      `json:"progress,omitempty"`
	Error     string    `json:"error,omitempty"`
	Message   string    `json:"message,omitempty"`
	Processes []Process `json:"processes,omitempty"`
}

// Process is one row of drover status: the master, the manager, a worker,
// a task worker, or a worker slot waiting to restart.
type Process struct {
	Role        string    `json:"role"`
	ID          int       `json:"id"`
	PID         int       `json:"pid"`
	State       string    `json:"state"`
	Started     time.Time `json:"started,omitempty"`
	UptimeSec   float64   `json:"uptime_s"`
	Requests    uint64    `json:"requests"`
	InFlight    int       `json:"in_flight"`
	Queued      int       `json:"queued,omitempty"` // events at a worker; for the master, tasks waiting for a task worker
	Concurrency int       `json:"concurrency,omitempty"`
	RSS         uint64    `json:"rss_bytes"`
	CPU         float64   `json:"cpu_percent"`
	Restarts    int       `json:"restarts"`
	LastExit    string    `json:"last_exit,omitempty"`
	Launch      string    `json:"launch,omitempty"`
	SDK         string    `json:"sdk,omitempty"` // what wrote the worker's hello: go, php, python …
	// Runtime holds Go runtime figures of plugin-launched workers.
	Runtime *ipc.RuntimeStats `json:"go_runtime,omitempty"`
	// Master only.
	Generation  int       `json:"generation,omitempty"` // 1, then +1 per upgrade
	Config      string    `json:"config,omitempty"`
	Listeners   []string  `json:"listeners,omitempty"`
	Connections int64     `json:"connections,omitempty"`
	Accepted    uint64    `json:"accepted,omitempty"`
	IPC         *IPCStats `json:"ipc,omitempty"`

	// HTTPBuffered (master only) is the request bodies and answers the
	// master holds for HTTP connections, against http_max_buffered.
	HTTPBuffered int64 `json:"http_buffered,omitempty"`

	// Pools (master only): the pools' sizes, now and configured (pool.go).
	Pools []PoolStatus `json:"pools,omitempty"`

	// Tables and Atomics (master only): the shared tables' rows and
	// memory, the atomics' values (tables:, atomics:; docs/tables.md).
	Tables  []shm.TableStats `json:"tables,omitempty"`
	Atomics map[string]int64 `json:"atomics,omitempty"`
}

// IPCStats count the master's frames to and from its workers and the
// system calls that carried them: frames per call is the batching factor.
type IPCStats struct {
	FramesToWorkers   uint64 `json:"frames_to_workers"`
	Writes            uint64 `json:"writes"`
	FramesFromWorkers uint64 `json:"frames_from_workers"`
	Reads             uint64 `json:"reads"`
}

// controlReq is a request handed to the master's loop; reply answers it.
type controlReq struct {
	Request
	reply chan<- Response
	conn  net.Conn
	// sent is closed once the first answer, a progress one, is written to
	// conn: the command's later answers follow it.
	sent chan struct{}
}

// serveControl accepts control connections until ln is closed.
func (m *Master) serveControl(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				m.log.WithError(err).Warn("control socket accept failed")
			}
			return
		}
		go m.controlConn(c)
	}
}

func (m *Master) controlConn(c net.Conn) {
	if err := checkPeer(c); err != nil {
		m.log.WithError(err).Warn("control connection refused")
		c.Close()
		return
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		c.Close()
		return
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(c, Response{Error: fmt.Sprintf("bad request: %v", err)})
		c.Close()
		return
	}
	if req.Cmd == "reopen-logs" {
		// Touches no table of the loop's: answered here, even while the
		// loop is busy with a reload.
		writeResponse(c, m.reopenAccessLog(m.reopenLogs()))
		c.Close()
		return
	}
	reply := make(chan Response, 1)
	sent := make(chan struct{})
	select {
	case m.control <- controlReq{Request: req, reply: reply, conn: c, sent: sent}:
	case <-m.done:
		c.Close()
		return
	}
	var resp Response
	select {
	case resp = <-reply:
	case <-m.done: // stopped before the answer was ready (a status's samples)
		c.Close()
		return
	}
	writeResponse(c, resp)
	if resp.Progress {
		close(sent)
		return // the command's goroutine writes the rest and closes c
	}
	if req.Cmd == "stop" && resp.OK {
		// Held open until the process exits: its EOF tells the CLI the tree is gone.
		m.holdMu.Lock()
		m.held = append(m.held, c)
		m.holdMu.Unlock()
		return
	}
	c.Close()
}

// reopenLogs reopens log_file (after logrotate renamed it) through
// Options.ReopenLogs and logs the outcome: a success to the new file, a
// failure to the old one, which keeps receiving the logs.
func (m *Master) reopenLogs() Response {
	if m.opts.ReopenLogs == nil || m.cfg.LogFile == "" {
		return Response{OK: true, Message: "no log file to reopen: drover logs to stderr (set log_file to log to a file)"}
	}
	if err := m.opts.ReopenLogs(); err != nil {
		m.log.WithError(err).WithField("log_file", m.cfg.LogFile).Warn("log file not reopened; logging to the old file")
		return Response{Error: err.Error()}
	}
	m.log.WithField("log_file", m.cfg.LogFile).Info("log file reopened")
	return Response{OK: true, Message: "logs reopened: " + m.cfg.LogFile}
}

func writeResponse(w io.Writer, r Response) {
	b, _ := json.Marshal(r)
	w.Write(append(b, '\n'))
}

// checkPeer admits only the user running the master (and root).
func checkPeer(c net.Conn) error {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != os.Geteuid() && cred.Uid != 0 {
		return fmt.Errorf("peer uid %d (pid %d) is not the owner uid %d", cred.Uid, cred.Pid, os.Geteuid())
	}
	return nil
}

// Client talks to a running master over its control socket.
type Client struct {
	Path string
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the control socket at path.
func Dial(path string) (*Client, error) {
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &Client{Path: path, conn: c, r: bufio.NewReader(c)}, nil
}

// Do sends req and reads the response.
func (c *Client) Do(req Request, timeout time.Duration) (Response, error) {
	var resp Response
	c.conn.SetDeadline(time.Now().Add(timeout))
	b, _ := json.Marshal(req)
	if _, err := c.conn.Write(append(b, '\n')); err != nil {
		return resp, err
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("no answer from the master: %w", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("bad answer from the master: %w", err)
	}
	return resp, nil
}

// Next reads the next line of a command that answers with several (a
// Response with Progress set is followed by more).
func (c *Client) Next(timeout time.Duration) (Response, error) {
	var resp Response
	c.conn.SetDeadline(time.Now().Add(timeout))
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("the master stopped answering: %w", err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("bad answer from the master: %w", err)
	}
	return resp, nil
}

// WaitClosed waits until the master closes the connection (it exited), or
// the timeout.
func (c *Client) WaitClosed(timeout time.Duration) error {
	c.conn.SetDeadline(time.Now().Add(timeout))
	_, err := io.Copy(io.Discard, c.r)
	return err
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }
