package config

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// WorkerCredential resolves user and group to the credential the workers
// run as, or nil when neither is set (workers run as drover does). The
// group defaults to the user's primary group; supplementary groups are
// dropped. Switching users needs root: the master and the manager keep it
// (as nginx's and php-fpm's masters do), the workers do not.
func (c *Config) WorkerCredential() (*syscall.Credential, error) {
	if c.User == "" && c.Group == "" {
		return nil, nil
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if c.User != "" {
		u, err := user.Lookup(c.User)
		if err != nil {
			if u, err = user.LookupId(c.User); err != nil {
				return nil, fmt.Errorf("user: unknown user %q (create it, or remove user:)", c.User)
			}
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if c.Group != "" {
		g, err := user.LookupGroup(c.Group)
		if err != nil {
			if g, err = user.LookupGroupId(c.Group); err != nil {
				return nil, fmt.Errorf("group: unknown group %q (create it, or remove group:)", c.Group)
			}
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	if os.Geteuid() != 0 && (uid != os.Geteuid() || gid != os.Getegid()) {
		return nil, fmt.Errorf("user/group: drover runs as uid %d gid %d and cannot start workers as uid %d gid %d: "+
			"start it as root (only the workers then run as that user), or remove user: and group:",
			os.Geteuid(), os.Getegid(), uid, gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
