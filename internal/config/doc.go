// Package config reads drover.yaml: the one place where the server's settings
// are parsed, defaulted and checked before any process starts.
//
// The master calls [Load] once, lets the CLI apply flag overrides, calls
// [Config.Validate] again and then hands the resolved [Config] to the manager
// process as JSON; every type here round-trips through encoding/json
// unchanged, so the manager never re-reads or re-interprets the file.
//
// Parsing is strict. The YAML document is walked node by node against the
// struct fields (their yaml tags), so every problem — an unknown key, a value
// of the wrong type, a missing handler, a listener address that cannot be
// bound — is reported with the file name and line, and all problems are
// reported at once, one per line:
//
//	drover.yaml:3: unknown key "wroker_num" (did you mean "worker_num"?)
//	drover.yaml:14: listeners[0].protocol: unknown value "htp" (want http, length, eof or raw)
//
// Values may take the environment: ${NAME} and ${NAME:-default} are
// expanded as each value is decoded (expand.go), an unset NAME without a
// default is an error at the value's line, and an expanded value is typed by
// its text, as if written in the file.
//
// Relative paths (handler dirs and commands, pid_file, log_file, watch, unix
// socket addresses) resolve against the directory of the config file. After
// Load, Dir, PidFile, LogFile and Watch are absolute; Handler.Cmd and
// Listener.Address keep what the user wrote, and the resolved Handler.Path
// and Listener.Addr are absolute.
//
// docs/configuration.md is the user-facing reference for every key.
package config
