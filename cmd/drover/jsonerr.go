package main

import (
	"io"
	"strings"

	"github.com/drover-dev/drover/internal/config"
)

// jsonError is an error of drover start whose config asks for JSON logs
// (log_format: json): main writes it as JSON log lines, so that every
// line on a container's stderr is one, even when drover could not start.
type jsonError struct{ error }

func (e jsonError) Unwrap() error { return e.error }

// inFormat marks err for JSON when format is json.
func inFormat(err error, format string) error {
	if err == nil || format != "json" {
		return err
	}
	return jsonError{err}
}

// startFormat is the log format drover start's errors take: the config's,
// or, when it did not load, what its file says (config.LogFormatOf).
func startFormat(cfg *config.Config, path string) string {
	if cfg != nil {
		return cfg.LogFormat
	}
	return config.LogFormatOf(path)
}

// printJSON writes err as the master logs a failure, one JSON line per
// line of its text (a config's problems are one a line).
func printJSON(w io.Writer, err error) {
	log := newLogger(w, "json", "info")
	for _, line := range strings.Split(err.Error(), "\n") {
		if line != "" {
			log.WithField("error", line).Error("drover failed")
		}
	}
}
