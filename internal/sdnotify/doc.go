// Package sdnotify speaks systemd's service protocols for the master:
// sd_notify(3) readiness messages, the watchdog, and socket activation
// (sd_listen_fds(3)). It needs no libsystemd and does nothing when the
// variables systemd sets are absent, so the master calls it unconditionally.
//
// Notifications. $NOTIFY_SOCKET names a unix datagram socket (a path, or
// an abstract name when it starts with '@'); each notification is one
// datagram of newline-separated VAR=value lines. The master sends:
//
//	READY=1, MAINPID=<pid>, STATUS=…   once it serves ([Serving]) — a new
//	                                   master after an upgrade too, which is
//	                                   how systemd learns the new main pid
//	RELOADING=1, MONOTONIC_USEC=<µs>   when a reload of the workers begins
//	                                   ([Reloading]); READY=1 when it ends
//	                                   ([Ready]). MONOTONIC_USEC is
//	                                   CLOCK_MONOTONIC, which systemd ≥ 253
//	                                   needs for Type=notify-reload
//	STOPPING=1                         when a stop begins ([Stopping])
//	MAINPID=<parent pid>               when a master started by an upgrade
//	                                   gives up after announcing itself
//	                                   ([HandBack])
//	WATCHDOG=1                         every WATCHDOG_USEC/2 ([Watchdog])
//
// A send is bounded (sendTimeout, 500 ms: a service manager that does not
// read must not hold the master's loop); a failure is logged with what was sent
// and drover carries on: systemd's bookkeeping is never a reason to stop
// serving.
//
// Socket activation. systemd passes listening sockets as descriptors 3 …
// 3+$LISTEN_FDS-1 to the process whose pid is $LISTEN_PID. [ListenFunc]
// gives the master's listeners these sockets where the address matches a
// configured tcp:// listener (by IP and port; 0.0.0.0 and [::] match each
// other), binding the rest itself; [Serving] warns about passed sockets
// that no listener took. The passed descriptors are marked close-on-exec
// so that no child inherits them, and never closed: a descriptor number
// that was systemd's stays so for the life of the process.
package sdnotify
