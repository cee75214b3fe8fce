package master

// reopenAccessLog reopens the access log's file (reopen-logs) after
// log_file, whose outcome is r, and returns the command's answer with
// both: it fails if either failed. A failure is logged, and the old file
// goes on receiving the lines.
func (m *Master) reopenAccessLog(r Response) Response {
	path, err := m.plane.ReopenAccessLog()
	if path == "" {
		return r // off, or on stdout: nothing to reopen
	}
	if err != nil {
		m.log.WithError(err).WithField("access_log", path).Warn("access log not reopened; its lines go to the old file")
		if r.Error != "" {
			return Response{Error: r.Error + "; " + err.Error()}
		}
		return Response{Error: err.Error() + " (" + r.Message + ")"}
	}
	m.log.WithField("access_log", path).Info("access log reopened")
	if r.Error != "" {
		return Response{Error: r.Error + " (access log reopened: " + path + ")"}
	}
	r.Message += "; access log reopened: " + path
	return r
}
