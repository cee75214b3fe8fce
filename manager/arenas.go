package manager

import (
	"os"
	"strconv"

	"github.com/sirupsen/logrus"

	"github.com/drover-dev/drover/ipc"
)

// arenas returns the files a new incarnation inherits from fd 3 on (its
// end of the socket pair, then for a worker the body arenas, ipc/arena.go)
// with the environment that names them, and the answer arena created for
// it, which the master gets too (CtlWorkerStarted); the caller closes it
// once both have it. Task workers and processes get no arena. A worker
// whose answer arena cannot be created runs without it: its bodies travel
// in frames.
func (mg *Manager) arenas(role string, pair *os.File) (extra []*os.File, env []string, answers *os.File) {
	extra = []*os.File{pair}
	if role != ipc.RoleWorker {
		return extra, nil, nil
	}
	extra = append(extra, mg.reqArena) // nil: fd 4 stays closed
	if mg.reqArena != nil {
		env = append(env, ipc.EnvRequestArena+"="+strconv.Itoa(ipc.RequestArenaFD))
	}
	f, _, err := ipc.NewArena("drover-answers", ipc.AnswerArenaSize, false)
	if err != nil {
		mg.log.WithFields(logrus.Fields{"error": err.Error()}).
			Warn("worker starts without an answer arena: its answers' bodies travel in frames")
		return extra, env, nil
	}
	extra = append(extra, f)
	env = append(env, ipc.EnvAnswerArena+"="+strconv.Itoa(ipc.AnswerArenaFD))
	return extra, env, f
}
